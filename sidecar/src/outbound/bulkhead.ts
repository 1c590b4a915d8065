// A target's bulkhead: at most maxConcurrent calls at once, up to maxQueue
// more waiting in arrival order, the rest refused. A call holds its slot
// until its answer has streamed back to the app, then hands it to the first
// waiter. Not cockatiel's BulkheadPolicy: that one holds a slot for the
// duration of a function, so keeping it until the answer is written took a
// promise, a closure and two more awaits per call on the hottest path, and
// a queued call cancelled by its signal surfaced as an error of its own.
import { CallAborted } from './attempt-result.ts';

interface Waiter {
  resolve(): void;
  signal: AbortSignal;
  onAbort(): void;
}

export class Bulkhead {
  private readonly maxConcurrent: number;
  private readonly maxQueue: number;
  private held = 0;
  private readonly waiting: Waiter[] = [];

  constructor(maxConcurrent: number, maxQueue: number) {
    this.maxConcurrent = maxConcurrent;
    this.maxQueue = maxQueue;
  }

  /** Calls holding a slot. */
  get active(): number {
    return this.held;
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Calls holding a slot or waiting for one. */
  get size(): number {
    return this.held + this.waiting.length;
  }

  /** Takes a free slot at once; false when all are held. */
  tryTake(): boolean {
    if (this.held >= this.maxConcurrent) return false;
    this.held += 1;
    return true;
  }

  /**
   * Waits in line for a slot; undefined when the line is full. Rejects with
   * CallAborted (and leaves the line) when `signal` aborts first.
   */
  wait(signal: AbortSignal): Promise<void> | undefined {
    if (this.waiting.length >= this.maxQueue) return undefined;
    if (signal.aborted) return Promise.reject(new CallAborted());
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        signal,
        onAbort: () => {
          const at = this.waiting.indexOf(waiter);
          if (at >= 0) this.waiting.splice(at, 1);
          reject(new CallAborted());
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** Gives the slot to the first waiter, or frees it. */
  release(): void {
    const next = this.waiting.shift();
    if (next === undefined) {
      this.held -= 1;
      return;
    }
    next.signal.removeEventListener('abort', next.onAbort);
    next.resolve();
  }
}
