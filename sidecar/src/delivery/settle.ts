// What happens to a message that was not processed, for push and pull alike:
// another attempt after a back-off that waits in the broker, or, after the
// last attempt (or when the app said it never can), the dead-letter queue.
import type { DeadLetterReason, Delivery } from '../broker/broker.ts';
import { type BackoffPolicy, backoffMs } from './backoff.ts';

export interface Settler {
  retry: BackoffPolicy & { maxAttempts: number };
  /** false: a message that ran out of attempts is dropped (logged and counted) instead of parked. */
  deadLetter: boolean;
  /** The broker's longest delay. */
  maxDelayMs: number;
  random?: () => number;
}

export type FailureVerdict =
  | {
      action: 'retry';
      status?: number | undefined;
      error: string;
      /** The app's `retry-after`: wait at least this long. */
      retryAfterMs?: number | undefined;
      /** A pull's nack with `retryAfter`: wait exactly this long instead of the back-off. */
      delayMs?: number | undefined;
    }
  | { action: 'dead-letter'; status?: number | undefined; error: string; reason?: DeadLetterReason };

/** `released`: the next copy could not be sent, so the message went back to its queue as it was. */
export type FailureOutcome = 'retried' | 'dead_lettered' | 'dropped' | 'released';

export async function settleFailure(
  settler: Settler,
  delivery: Delivery,
  verdict: FailureVerdict,
): Promise<FailureOutcome> {
  const failure = { status: verdict.status, error: verdict.error };
  const park = async (reason: DeadLetterReason): Promise<FailureOutcome> => {
    if (!settler.deadLetter) {
      await delivery.ack();
      return 'dropped';
    }
    return (await delivery.deadLetter(reason, failure)) ? 'dead_lettered' : 'released';
  };
  if (verdict.action === 'dead-letter') return park(verdict.reason ?? 'rejected');
  if (delivery.attempt >= settler.retry.maxAttempts) return park('max-attempts');
  const waitMs =
    verdict.delayMs ?? Math.max(backoffMs(settler.retry, delivery.attempt, settler.random), verdict.retryAfterMs ?? 0);
  const delayMs = Math.min(settler.maxDelayMs, waitMs);
  return (await delivery.retry(delayMs, failure)) ? 'retried' : 'released';
}
