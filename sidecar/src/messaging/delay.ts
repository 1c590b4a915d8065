// `?delay=` and `?deliverAt=` of a publish, as a delay in milliseconds.

import { ProblemError } from '../api/problems.ts';
import { parseDuration } from '../config/duration.ts';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

export interface Delay {
  delayMs: number;
  deliverAt: Date;
}

/** Undefined when neither is given; a ProblemError DELAY_INVALID when either is wrong. */
export function parseDelay(
  query: { delay?: string | undefined; deliverAt?: string | undefined },
  maxDelayMs: number,
  now = Date.now(),
): Delay | undefined {
  const { delay, deliverAt } = query;
  if (delay === undefined && deliverAt === undefined) return undefined;
  if (delay !== undefined && deliverAt !== undefined) {
    throw new ProblemError('DELAY_INVALID', 'give delay or deliverAt, not both');
  }
  let delayMs: number;
  if (delay !== undefined) {
    const parsed = parseDuration(delay);
    if (parsed === undefined) {
      throw new ProblemError(
        'DELAY_INVALID',
        `delay "${delay}": expected a duration such as 250ms, 30s, 10m, 7d or PT10M`,
      );
    }
    delayMs = parsed;
  } else {
    const at = RFC3339.test(deliverAt as string) ? Date.parse(deliverAt as string) : Number.NaN;
    if (Number.isNaN(at)) {
      throw new ProblemError(
        'DELAY_INVALID',
        `deliverAt "${deliverAt}": expected an RFC 3339 time such as 2030-01-31T09:00:00Z`,
      );
    }
    delayMs = Math.max(0, at - now);
  }
  const tooLong = delayProblem(delayMs, maxDelayMs);
  if (tooLong !== undefined) throw new ProblemError('DELAY_INVALID', tooLong);
  return { delayMs, deliverAt: new Date(now + delayMs) };
}

/** What is wrong with a delay the broker is to hold (a publish's, an outbox row's deliver_at). */
export function delayProblem(delayMs: number, maxDelayMs: number): string | undefined {
  if (delayMs <= maxDelayMs) return undefined;
  return `the delay is longer than the ${Math.floor(maxDelayMs / 86_400_000)} days the broker can hold a message`;
}
