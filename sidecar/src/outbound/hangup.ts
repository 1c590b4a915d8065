// Whether the app that made an outbound call has hung up (its connection
// closed before the answer was written), and what to stop when it does: the
// attempt on the wire. Not an AbortSignal per call: that is an EventTarget
// made, listened to and unlistened for every attempt, some 1.5 µs of the
// 50 µs of CPU a call costs (docs/benchmarks.md, "Outbound calls"). The
// AbortSignal that timers and the bulkhead's queue take is made only when a
// call waits (a back-off, a full bulkhead), off the common path.
export class Hangup {
  private hung = false;
  private readonly stops = new Set<() => void>();
  private controller: AbortController | undefined;

  /** True once the app has hung up. */
  get happened(): boolean {
    return this.hung;
  }

  /** An AbortSignal that aborts when the app hangs up (already aborted if it has). */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.hung) this.controller.abort();
    }
    return this.controller.signal;
  }

  /** Calls `stop` once, when the app hangs up, unless `unwatch(stop)` came first. Not called if it already has. */
  watch(stop: () => void): void {
    if (!this.hung) this.stops.add(stop);
  }

  unwatch(stop: () => void): void {
    this.stops.delete(stop);
  }

  /** The app hung up: stops what is watching, and aborts the signal. */
  hangUp(): void {
    if (this.hung) return;
    this.hung = true;
    for (const stop of this.stops) stop();
    this.stops.clear();
    this.controller?.abort();
  }
}
