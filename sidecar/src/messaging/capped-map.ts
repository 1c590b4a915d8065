// A Map of at most `max` entries, the one set first forgotten first: the
// broker's per-topic declarations stand on it.
import { EvictionQueue } from './eviction-queue.ts';

interface Entry<V> {
  readonly key: string;
  value: V;
}

export class CappedMap<V> {
  private readonly queue = new EvictionQueue<Entry<V>>();
  private readonly max: number;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`a cap must be a whole number of at least 1, got ${max}`);
    this.max = max;
  }

  get size(): number {
    return this.queue.size;
  }

  get(key: string): V | undefined {
    return this.queue.get(key)?.value;
  }

  /** Sets `key`; a new key past the cap forgets the oldest one. A key already there keeps its place. */
  set(key: string, value: V): void {
    const entry = this.queue.get(key);
    if (entry !== undefined) {
      entry.value = value;
      return;
    }
    // Every live entry is in line, so this ends.
    while (this.queue.size >= this.max) this.queue.dropOldest();
    this.queue.push({ key, value });
  }

  delete(key: string): void {
    this.queue.delete(key);
  }
}
