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
  /** id -> expiry. */
  private readonly ids = new Map<string, number>();
  /**
   * The same entries in the order they expire, oldest from `head` on. Evicting
   * from the front of the Map itself got slow once it was full (V8 walks past
   * the deleted entries), so the order lives in an array.
   */
  private order: { id: string; expires: number }[] = [];
  private head = 0;
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
    const expires = now + this.windowMs;
    this.ids.set(id, expires);
    this.order.push({ id, expires });
    while (this.head < this.order.length) {
      const oldest = this.order[this.head] as { id: string; expires: number };
      if (oldest.expires > now && this.ids.size <= this.maxIds) break;
      this.head += 1;
      // A later remember of the same id moved its expiry: only the newest entry removes it.
      if (this.ids.get(oldest.id) === oldest.expires) this.ids.delete(oldest.id);
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}
