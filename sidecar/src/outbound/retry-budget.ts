// A retry budget per target, as Linkerd's (and Envoy's retry_budget): over a
// sliding window, retries may not exceed `ratio` of the calls plus a reserve
// of `minPerSecond` per second of the window. However many calls retry, the
// target never sees more than (1 + ratio) times the app's load, plus the
// reserve. cockatiel has no such policy; this is the whole of it.

const BUCKET_MS = 1_000;

export class RetryBudget {
  private readonly ratio: number;
  private readonly reserve: number;
  private readonly buckets: number;
  private readonly calls: Uint32Array;
  private readonly retries: Uint32Array;
  private readonly now: () => number;
  /** The bucket index (time / BUCKET_MS) the arrays were last advanced to. */
  private current = 0;

  constructor(ratio: number, minPerSecond: number, { windowMs = 10_000, now = Date.now } = {}) {
    this.ratio = ratio;
    this.buckets = Math.max(1, Math.round(windowMs / BUCKET_MS));
    this.reserve = minPerSecond * this.buckets * (BUCKET_MS / 1_000);
    this.calls = new Uint32Array(this.buckets);
    this.retries = new Uint32Array(this.buckets);
    this.now = now;
  }

  /** Counts a call (its first attempt). */
  recordCall(): void {
    const slot = this.advance();
    this.calls[slot] = (this.calls[slot] ?? 0) + 1;
  }

  /** Takes one retry from the budget; false when the budget is spent (and nothing is taken). */
  tryRetry(): boolean {
    const slot = this.advance();
    let calls = 0;
    let retries = 0;
    for (let i = 0; i < this.buckets; i++) {
      calls += this.calls[i] ?? 0;
      retries += this.retries[i] ?? 0;
    }
    if (retries + 1 > this.ratio * calls + this.reserve) return false;
    this.retries[slot] = (this.retries[slot] ?? 0) + 1;
    return true;
  }

  /** Moves the window to now, zeroing the buckets that fell out of it; returns the current bucket's index. */
  private advance(): number {
    const bucket = Math.floor(this.now() / BUCKET_MS);
    if (bucket !== this.current) {
      const stale = Math.min(this.buckets, bucket - this.current);
      for (let i = 1; i <= stale; i++) {
        const index = (this.current + i) % this.buckets;
        this.calls[index] = 0;
        this.retries[index] = 0;
      }
      this.current = bucket;
    }
    return bucket % this.buckets;
  }
}
