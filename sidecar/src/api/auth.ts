// outrigger-api-token: when OUTRIGGER_API_TOKEN is set, every app API request
// must carry it. Compared in constant time (both sides hashed to equal length).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ProblemError } from './problems.ts';

const digest = (value: string) => createHash('sha256').update(value).digest();

export function installApiTokenCheck(app: FastifyInstance, token: string | undefined): void {
  if (token === undefined) return;
  const expected = digest(token);
  // A callback hook, not an async one: no promise per request.
  app.addHook('onRequest', (request, _reply, done) => {
    const given = request.headers['outrigger-api-token'];
    if (typeof given === 'string' && timingSafeEqual(digest(given), expected)) done();
    else
      done(
        new ProblemError('UNAUTHORIZED', 'send the token from OUTRIGGER_API_TOKEN in the outrigger-api-token header'),
      );
  });
}
