// The circuit breaker's sampling option: opens when more than `failureRatio`
// of the attempts over a sliding window failed, once at least `minimumRps`
// attempts per second came in over it. In place of cockatiel's
// SamplingBreaker, whose window moves one bucket per attempt: after a quiet
// spell the failures from before it still counted, and a single failure could
// open the circuit.
import { CircuitState, type IBreaker } from 'cockatiel';
import type { CircuitBreaker } from '../config/target.ts';
import { SlidingCounts } from './sliding-counts.ts';

const SUCCESSES = 0;
const FAILURES = 1;

/** The sampling option as parsed (the window in ms). */
export type Sampling = NonNullable<CircuitBreaker['sampling']>;

export class SamplingBreaker implements IBreaker {
  /** For cockatiel's serialisation of a breaker (toJSON), which the sidecar does not use. */
  state: unknown;
  private readonly failureRatio: number;
  private readonly minimumAttempts: number;
  private readonly counts: SlidingCounts;

  constructor({ failureRatio, window, minimumRps }: Sampling, now: () => number = Date.now) {
    this.failureRatio = failureRatio;
    this.minimumAttempts = (minimumRps * window) / 1_000;
    // Buckets of at most a second, and at least 5 of them (as cockatiel's); SlidingCounts
    // caps how many, so a long window gets longer ones.
    const buckets = Math.max(5, Math.ceil(window / 1_000));
    this.counts = new SlidingCounts(2, { windowMs: window, buckets, now });
  }

  success(state: CircuitState): void {
    if (state === CircuitState.HalfOpen) this.counts.clear(); // the trial closed the circuit: a fresh start
    this.counts.add(SUCCESSES);
  }

  failure(state: CircuitState): boolean {
    this.counts.add(FAILURES);
    if (state !== CircuitState.Closed) return true; // a failed trial
    const failures = this.counts.sum(FAILURES);
    const attempts = failures + this.counts.sum(SUCCESSES);
    return attempts >= this.minimumAttempts && failures > this.failureRatio * attempts;
  }
}
