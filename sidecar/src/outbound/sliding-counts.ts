// Counts of a few kinds of event over a sliding window of time, kept in
// buckets: a bucket older than the window is emptied as soon as the window
// moves past it, however long nothing was counted. The retry budget counts
// calls and retries with it, the sampling breaker successes and failures.
// However long the window, it has at most MAX_BUCKETS buckets (each then
// longer), so that neither the memory nor the catch-up after a quiet spell
// grows with it.

/** The most buckets a window is kept in. */
export const MAX_BUCKETS = 120;

export class SlidingCounts {
  private readonly kinds: number;
  /** The buckets the window is kept in: as many as asked for, up to MAX_BUCKETS. */
  readonly buckets: number;
  private readonly bucketMs: number;
  /** The count of kind k in bucket b at [k * buckets + b]. */
  private readonly counts: Uint32Array;
  /** Each kind's count over the whole window. */
  private readonly sums: Float64Array;
  private readonly now: () => number;
  /** The bucket (time / bucketMs) the counts were last moved to. */
  private current: number;

  constructor(
    kinds: number,
    { windowMs, buckets, now = Date.now }: { windowMs: number; buckets: number; now?: () => number },
  ) {
    if (!(Number.isFinite(windowMs) && windowMs > 0)) {
      throw new RangeError(`SlidingCounts: the window must be a positive number of ms, not ${windowMs}`);
    }
    if (!(Number.isInteger(buckets) && buckets >= 1)) {
      throw new RangeError(`SlidingCounts: expected a positive whole number of buckets, not ${buckets}`);
    }
    this.kinds = kinds;
    this.buckets = Math.min(buckets, MAX_BUCKETS);
    this.bucketMs = windowMs / this.buckets;
    this.counts = new Uint32Array(kinds * this.buckets);
    this.sums = new Float64Array(kinds);
    this.now = now;
    this.current = Math.floor(now() / this.bucketMs);
  }

  add(kind: number): void {
    const bucket = this.advance();
    this.counts[kind * this.buckets + bucket] = (this.counts[kind * this.buckets + bucket] ?? 0) + 1;
    this.sums[kind] = (this.sums[kind] ?? 0) + 1;
  }

  /** The count of `kind` over the window. */
  sum(kind: number): number {
    this.advance();
    return this.sums[kind] ?? 0;
  }

  clear(): void {
    this.counts.fill(0);
    this.sums.fill(0);
  }

  /** Moves the window to now, emptying the buckets that left it; returns the current bucket's index. */
  private advance(): number {
    const bucket = Math.floor(this.now() / this.bucketMs);
    if (bucket > this.current) {
      const stale = Math.min(this.buckets, bucket - this.current);
      for (let i = 1; i <= stale; i++) {
        const index = (this.current + i) % this.buckets;
        for (let kind = 0; kind < this.kinds; kind++) {
          const at = kind * this.buckets + index;
          this.sums[kind] = (this.sums[kind] ?? 0) - (this.counts[at] ?? 0);
          this.counts[at] = 0;
        }
      }
      this.current = bucket;
    }
    return this.current % this.buckets;
  }
}
