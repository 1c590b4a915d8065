// Keys remembered for a window, at most `maxKeys` of them (the oldest go
// first): the publish dedupe window and the consumer inbox both stand on it.
import { EvictionQueue } from './eviction-queue.ts';

export interface RecentKeysOptions {
  windowMs: number;
  maxKeys: number;
  now?: () => number;
}

interface Entry<V> {
  readonly key: string;
  readonly expires: number;
  readonly value: V;
}

export class RecentKeys<V> {
  /** In expiry order: every entry has the same window. */
  private readonly queue = new EvictionQueue<Entry<V>>();
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor({ windowMs, maxKeys, now = Date.now }: RecentKeysOptions) {
    this.windowMs = windowMs;
    this.maxKeys = maxKeys;
    this.now = now;
  }

  get size(): number {
    return this.queue.size;
  }

  /** The value set under `key` within the window. */
  get(key: string): V | undefined {
    const entry = this.queue.get(key);
    return entry !== undefined && entry.expires > this.now() ? entry.value : undefined;
  }

  /** Remembers `value` under `key` for a new window, forgetting what is too old or too many. */
  set(key: string, value: V): void {
    const now = this.now();
    // Setting a key again starts its window over: its earlier entry is passed over when it comes up.
    this.queue.push({ key, expires: now + this.windowMs, value });
    for (let oldest = this.queue.oldest(); oldest !== undefined; oldest = this.queue.oldest()) {
      if (oldest.expires > now && this.queue.size <= this.maxKeys) break;
      this.queue.dropOldest();
    }
  }

  /** Forgets `key`, if `value` is still what it holds. */
  forget(key: string, value: V): void {
    if (this.queue.get(key)?.value === value) this.queue.delete(key);
  }
}
