// Remembers recent publishes by key for a window, so a retried publish with
// the same idempotency key is answered with the first one's result instead of
// being sent twice. Bounded: the oldest keys go first when it is full.
// In memory, per sidecar: consumers still dedupe by message id (ce-id).

export interface DedupeOptions {
  windowMs: number;
  maxKeys: number;
  now?: () => number;
}

interface Entry<T> {
  expires: number;
  result: Promise<T>;
}

export class DedupeWindow<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor({ windowMs, maxKeys, now = Date.now }: DedupeOptions) {
    this.windowMs = windowMs;
    this.maxKeys = maxKeys;
    this.now = now;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The result of the first `work` run under `key` within the window (in
   * flight or done), or runs `work` now. A failed run is forgotten, so a
   * retry after a failure really retries.
   */
  run(key: string, work: () => Promise<T>): { result: Promise<T>; duplicate: boolean } {
    const now = this.now();
    this.evict(now);
    const existing = this.entries.get(key);
    if (existing !== undefined && existing.expires > now) return { result: existing.result, duplicate: true };
    const result = work();
    const entry = { expires: now + this.windowMs, result };
    this.entries.delete(key);
    this.entries.set(key, entry);
    result.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return { result, duplicate: false };
  }

  private evict(now: number): void {
    // Entries are in insertion order, which is expiry order: stop at the first live one.
    for (const [key, entry] of this.entries) {
      if (entry.expires > now && this.entries.size < this.maxKeys) break;
      this.entries.delete(key);
    }
  }
}
