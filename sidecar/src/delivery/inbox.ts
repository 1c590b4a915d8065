// Idempotent consumption: the ids of messages the app has already processed,
// per subscription, for a window. A redelivery of one of them (the connection
// dropped between the app's 2xx and the ack) is acked without reaching the
// app again. In memory and bounded: the oldest ids go first when it is full.
// The app still gets `ce-id` on every delivery to dedupe in its own transaction.

export interface InboxOptions {
  windowMs: number;
  maxIds: number;
  now?: () => number;
}

export class Inbox {
  /** id -> expiry, in insertion (= expiry) order. */
  private readonly ids = new Map<string, number>();
  private readonly windowMs: number;
  private readonly maxIds: number;
  private readonly now: () => number;

  constructor({ windowMs, maxIds, now = Date.now }: InboxOptions) {
    this.windowMs = windowMs;
    this.maxIds = maxIds;
    this.now = now;
  }

  get size(): number {
    return this.ids.size;
  }

  has(id: string): boolean {
    const expires = this.ids.get(id);
    return expires !== undefined && expires > this.now();
  }

  remember(id: string): void {
    const now = this.now();
    this.ids.delete(id);
    this.ids.set(id, now + this.windowMs);
    for (const [key, expires] of this.ids) {
      if (expires > now && this.ids.size <= this.maxIds) break;
      this.ids.delete(key);
    }
  }
}
