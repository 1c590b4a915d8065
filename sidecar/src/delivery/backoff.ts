// How long a failed delivery waits in the broker before its next attempt.

export interface BackoffPolicy {
  initial: number;
  max: number;
  multiplier: number;
  /** 0: exactly the exponential value; 1: anywhere between 0 and it ("full jitter"). */
  jitter: number;
}

/**
 * The wait after attempt `failedAttempt` (1-based) failed: initial × multiplier^(n-1),
 * capped at max, minus a random share of up to `jitter` of it, so that
 * replicas which failed together do not retry together.
 */
export function backoffMs(policy: BackoffPolicy, failedAttempt: number, random: () => number = Math.random): number {
  const exponential = policy.initial * policy.multiplier ** Math.max(0, failedAttempt - 1);
  const capped = Math.min(policy.max, exponential);
  return Math.round(capped * (1 - policy.jitter * random()));
}

/**
 * A `retry-after` header (delay-seconds or an HTTP date) in milliseconds;
 * undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(text)) return Number(text) * 1000;
  // An HTTP date starts with the day's name ("Thu, 01 Jan 2026 00:00:10 GMT").
  if (!/^\s*[A-Za-z]{3}/.test(text)) return undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
