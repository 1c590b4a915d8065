// What every app-API request must pass first: the sidecar is not shutting
// down, and when OUTRIGGER_API_TOKEN is set, the request carries it in
// outrigger-api-token (compared in constant time: both sides hashed to equal length).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { ProblemError } from './problems.ts';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Why an app-API request is refused before anything else runs, or undefined. */
export type RequestCheck = (headers: IncomingHttpHeaders) => ProblemError | undefined;

/**
 * SHUTTING_DOWN once shutdown began, then UNAUTHORIZED without the token
 * (when one is configured). One check for fastify's routes (an onRequest hook,
 * app.ts) and the outbound proxy (api/outbound.ts).
 */
export function requestCheck(token: string | undefined, isClosing: () => boolean): RequestCheck {
  const expected = token === undefined ? undefined : digest(token);
  return (headers) => {
    if (isClosing()) return new ProblemError('SHUTTING_DOWN', 'the sidecar is shutting down; retry elsewhere');
    if (expected === undefined) return undefined;
    const given = headers['outrigger-api-token'];
    if (typeof given === 'string' && timingSafeEqual(digest(given), expected)) return undefined;
    return new ProblemError(
      'UNAUTHORIZED',
      'send the token from OUTRIGGER_API_TOKEN in the outrigger-api-token header',
    );
  };
}
