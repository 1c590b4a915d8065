// Keys remembered for a window, at most `maxKeys` of them (the oldest go
// first): the publish dedupe window and the consumer inbox both stand on it.
// Expiry order lives in an array beside the Map: evicting from the front of a
// Map that is full and churning gets slow (V8 walks past deleted entries).

export interface RecentKeysOptions {
  windowMs: number;
  maxKeys: number;
  now?: () => number;
}

interface Entry<V> {
  key: string;
  expires: number;
  value: V;
}

export class RecentKeys<V> {
  private readonly entries = new Map<string, Entry<V>>();
  /** Every entry ever set, in expiry order, live ones from `head` on. */
  private order: Entry<V>[] = [];
  private head = 0;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor({ windowMs, maxKeys, now = Date.now }: RecentKeysOptions) {
    this.windowMs = windowMs;
    this.maxKeys = maxKeys;
    this.now = now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value set under `key` within the window. */
  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    return entry !== undefined && entry.expires > this.now() ? entry.value : undefined;
  }

  /** Remembers `value` under `key` for a new window, forgetting what is too old or too many. */
  set(key: string, value: V): void {
    const now = this.now();
    const entry = { key, expires: now + this.windowMs, value };
    this.entries.set(key, entry);
    this.order.push(entry);
    while (this.head < this.order.length) {
      const oldest = this.order[this.head] as Entry<V>;
      if (oldest.expires > now && this.entries.size <= this.maxKeys) break;
      this.head += 1;
      // Only the newest entry of a key removes it: setting a key again starts its window over.
      if (this.entries.get(oldest.key) === oldest) this.entries.delete(oldest.key);
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  /** Forgets `key`, if `value` is still what it holds. */
  forget(key: string, value: V): void {
    if (this.entries.get(key)?.value === value) this.entries.delete(key);
  }
}
