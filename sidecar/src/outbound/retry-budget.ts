// A retry budget per target, as Linkerd's (and Envoy's retry_budget): over a
// sliding 10 s window, retries may not exceed `ratio` of the calls plus a
// reserve of `minPerSecond` per second of the window. However many calls
// retry, the target never sees more than (1 + ratio) times the app's load,
// plus the reserve. cockatiel has no such policy; this is the whole of it.
import { SlidingCounts } from './sliding-counts.ts';

/** The window, in buckets of a second: the reserve is minPerSecond x 10 (docs/api.md, "Retry budget"). */
const WINDOW_SECONDS = 10;
const CALLS = 0;
const RETRIES = 1;

export class RetryBudget {
  private readonly ratio: number;
  private readonly reserve: number;
  private readonly counts: SlidingCounts;

  constructor(ratio: number, minPerSecond: number, { now = Date.now } = {}) {
    this.ratio = ratio;
    this.reserve = minPerSecond * WINDOW_SECONDS;
    this.counts = new SlidingCounts(2, { windowMs: WINDOW_SECONDS * 1_000, buckets: WINDOW_SECONDS, now });
  }

  /** Counts a call (its first attempt). */
  recordCall(): void {
    this.counts.add(CALLS);
  }

  /** Takes one retry from the budget; false when the budget is spent (and nothing is taken). */
  tryRetry(): boolean {
    if (this.counts.sum(RETRIES) + 1 > this.ratio * this.counts.sum(CALLS) + this.reserve) return false;
    this.counts.add(RETRIES);
    return true;
  }
}
