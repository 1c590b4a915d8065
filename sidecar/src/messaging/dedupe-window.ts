// Remembers recent publishes by key for a window, so a retried publish with
// the same idempotency key is answered with the first one's result instead of
// being sent twice. Bounded: the oldest keys go first when it is full.
// In memory, per sidecar: consumers still dedupe by message id (ce-id).
import { RecentKeys, type RecentKeysOptions } from './recent-keys.ts';

export class DedupeWindow<T> {
  private readonly results: RecentKeys<Promise<T>>;

  constructor(options: RecentKeysOptions) {
    this.results = new RecentKeys(options);
  }

  get size(): number {
    return this.results.size;
  }

  /**
   * The result of the first `work` run under `key` within the window (in
   * flight or done), or runs `work` now. A failed run is forgotten, so a
   * retry after a failure really retries.
   */
  run(key: string, work: () => Promise<T>): { result: Promise<T>; duplicate: boolean } {
    const existing = this.results.get(key);
    if (existing !== undefined) return { result: existing, duplicate: true };
    const result = work();
    this.results.set(key, result);
    result.catch(() => this.results.forget(key, result));
    return { result, duplicate: false };
  }
}
