// A Map of at most `max` entries, the one set first forgotten first: the
// broker's per-topic declarations stand on it. As in RecentKeys, the order
// lives in an array beside the Map: taking the first key of a full Map that
// churns (keys().next()) makes V8 walk past every deleted entry, some 7 µs
// a time at 10,000 entries.

interface Entry<V> {
  key: string;
  value: V;
}

export class CappedMap<V> {
  private readonly entries = new Map<string, Entry<V>>();
  /** Every entry ever added, oldest first, live ones from `head` on (a deleted or replaced one is skipped). */
  private order: Entry<V>[] = [];
  private head = 0;
  private readonly max: number;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`a cap must be a whole number of at least 1, got ${max}`);
    this.max = max;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): V | undefined {
    return this.entries.get(key)?.value;
  }

  /** Sets `key`; a new key past the cap forgets the oldest one. A key already there keeps its place. */
  set(key: string, value: V): void {
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      entry.value = value;
      return;
    }
    while (this.entries.size >= this.max && this.head < this.order.length) {
      const oldest = this.order[this.head] as Entry<V>;
      this.head += 1;
      if (this.entries.get(oldest.key) === oldest) this.entries.delete(oldest.key);
    }
    const added = { key, value };
    this.entries.set(key, added);
    this.order.push(added);
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}
