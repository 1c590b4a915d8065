// Whether an outbound call is cut short, and what to stop when it is: the
// attempt on the wire. Two things cut a call: its app hanging up (its
// connection closed before the answer was written), and its deadline passing
// (targets[].deadline, or the app's outrigger-timeout header), until the
// deadline is disarmed as the answer's headers go back. Not an AbortSignal
// per call: that is an EventTarget made, listened to and unlistened for every
// attempt, some 1.5 µs of the 50 µs of CPU a call costs (docs/benchmarks.md,
// "Outbound calls"). The AbortSignal that timers and the bulkhead's queue take
// is made only when a call waits (a back-off, a full bulkhead), and the
// deadline's one timer only for a call that has a deadline: off the common path.

/** Who set a call's deadline: the target's `deadline`, or the app's outrigger-timeout (the shorter of the two wins). */
export type DeadlineSetter = 'target' | 'app';

export class Hangup {
  private hung = false;
  private late = false;
  /** The deadline in ms from the call's start, when it has one, and who set it. */
  private deadlineMs: number | undefined;
  private deadlineBy: DeadlineSetter | undefined;
  /** When the deadline passes, on performance.now()'s clock; Infinity without one. */
  private deadlineAt = Number.POSITIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private readonly stops = new Set<() => void>();
  private controller: AbortController | undefined;

  /** True once the app has hung up. */
  get happened(): boolean {
    return this.hung;
  }

  /** True once the deadline has passed while the app still waits for its answer. */
  get expired(): boolean {
    return this.late && !this.hung;
  }

  /** True once the app has hung up or the deadline has passed: nothing more is sent. */
  get cut(): boolean {
    return this.hung || this.late;
  }

  /** The deadline armed by expireIn(), in ms; undefined without one. */
  get deadline(): number | undefined {
    return this.deadlineMs;
  }

  /** Who set the deadline: the target's configuration, or the app (outrigger-timeout). */
  get deadlineSetBy(): DeadlineSetter | undefined {
    return this.deadlineBy;
  }

  /** An AbortSignal that aborts when the call is cut (already aborted if it is). */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.hung || this.late) this.controller.abort();
    }
    return this.controller.signal;
  }

  /** Calls `stop` when the call is cut (each time: see expire()), unless `unwatch(stop)` came first. Not called if the app already hung up. */
  watch(stop: () => void): void {
    if (!this.hung) this.stops.add(stop);
  }

  unwatch(stop: () => void): void {
    this.stops.delete(stop);
  }

  /**
   * The call has a deadline, `ms` from now: when it passes, what is watching
   * is stopped and the signal aborts, as for a hang-up, but `expired` is true
   * rather than `happened`. One timer, cleared by disarm() or a hang-up.
   */
  expireIn(ms: number, setBy: DeadlineSetter): void {
    this.deadlineMs = ms;
    this.deadlineBy = setBy;
    this.deadlineAt = performance.now() + ms;
    this.timer = setTimeout(expireHangup, ms, this); // at most 24d (LONGEST_TIMER_MS), within setTimeout's reach
  }

  /** True when `ms` from now is at or past the deadline. */
  passesDeadline(ms: number): boolean {
    return this.deadlineAt !== Number.POSITIVE_INFINITY && performance.now() + ms >= this.deadlineAt;
  }

  /** The deadline no longer applies (the answer's headers are going back, or the call failed): its timer goes. */
  disarm(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The app hung up: stops what is watching, and aborts the signal. */
  hangUp(): void {
    if (this.hung) return;
    this.hung = true;
    this.disarm();
    for (const stop of this.stops) stop();
    this.stops.clear();
    this.controller?.abort();
  }

  /**
   * The deadline passed (its timer calls this): stops what is watching, and
   * aborts the signal. What is watching stays watched: an answer already
   * streaming (held through a back-off) ignores the deadline, and is still
   * stopped if the app hangs up later.
   */
  expire(): void {
    this.timer = undefined;
    if (this.hung || this.late) return;
    this.late = true;
    for (const stop of this.stops) stop();
    this.controller?.abort();
  }
}

/** The deadline's timer callback, one for all calls: a call's Hangup is its argument, not a closure. */
function expireHangup(hangup: Hangup): void {
  hangup.expire();
}
