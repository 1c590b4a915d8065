// Entries by key, and the order they were set in, for what forgets its oldest
// entries first: CappedMap (a cap on entries) and RecentKeys (a window of
// time) stand on it, each deciding when the oldest goes. The order lives in an
// array beside the Map: taking the first key of a full Map that churns
// (keys().next()) makes V8 walk past every deleted entry, some 7 µs a time at
// 10,000 entries.

export class EvictionQueue<E extends { readonly key: string }> {
  private readonly entries = new Map<string, E>();
  /** Every entry ever set, oldest first, from `head` on; one deleted or set again since is passed over. */
  private order: E[] = [];
  private head = 0;

  get size(): number {
    return this.entries.size;
  }

  /** Entries in line, the passed-over ones too: what the order array holds (bounded by its compaction). */
  get queued(): number {
    return this.order.length - this.head;
  }

  /** The order array's own length, compaction's to bound. */
  get capacity(): number {
    return this.order.length;
  }

  get(key: string): E | undefined {
    return this.entries.get(key);
  }

  /** Sets `entry` under its key, last in line; an entry the key had before no longer counts. */
  push(entry: E): void {
    this.entries.set(entry.key, entry);
    this.order.push(entry);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** The first in line: perhaps no longer its key's entry, and then dropping it forgets nothing. */
  oldest(): E | undefined {
    return this.order[this.head];
  }

  /** Takes the first in line out, forgetting its key if the entry is still the key's. */
  dropOldest(): void {
    const oldest = this.order[this.head];
    if (oldest === undefined) return;
    this.head += 1;
    if (this.entries.get(oldest.key) === oldest) this.entries.delete(oldest.key);
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}
