// outrigger-api-token: when OUTRIGGER_API_TOKEN is set, every app API request
// must carry it (fastify's routes through a hook, the outbound proxy itself).
// Compared in constant time (both sides hashed to equal length).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { ProblemError } from './problems.ts';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** UNAUTHORIZED when the request lacks the token, else undefined. */
export type TokenCheck = (headers: IncomingHttpHeaders) => ProblemError | undefined;

/** The check for `token`; one that lets everything through when no token is configured. */
export function apiTokenCheck(token: string | undefined): TokenCheck {
  if (token === undefined) return () => undefined;
  const expected = digest(token);
  return (headers) => {
    const given = headers['outrigger-api-token'];
    if (typeof given === 'string' && timingSafeEqual(digest(given), expected)) return undefined;
    return new ProblemError(
      'UNAUTHORIZED',
      'send the token from OUTRIGGER_API_TOKEN in the outrigger-api-token header',
    );
  };
}

export function installApiTokenCheck(app: FastifyInstance, token: string | undefined): void {
  if (token === undefined) return;
  const check = apiTokenCheck(token);
  // A callback hook, not an async one: no promise per request.
  app.addHook('onRequest', (request, _reply, done) => done(check(request.headers)));
}
