// The contract's outcome table (docs/api.md, "Push delivery"): what the app's
// answer to a push means for the message.
import type { FailureVerdict } from './settle.ts';

export type PushResult =
  | { kind: 'answered'; status: number; retryAfterMs?: number | undefined; detail?: string | undefined }
  | { kind: 'failed'; error: string; timedOut: boolean };

/** What becomes of the message; the failures are settled by settle.ts. */
export type Verdict = { action: 'ack' } | FailureVerdict;

/** 2xx: ack. 408, 429, 5xx, timeouts and connection errors: retry. Any other 4xx: dead-letter at once. */
export function verdictOf(result: PushResult): Verdict {
  if (result.kind === 'failed') return { action: 'retry', error: result.error };
  const { status } = result;
  if (status >= 200 && status < 300) return { action: 'ack' };
  const error = `the app answered ${status}${result.detail ? `: ${result.detail}` : ''}`;
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
    return { action: 'dead-letter', status, error };
  }
  return { action: 'retry', status, error, retryAfterMs: result.retryAfterMs };
}
