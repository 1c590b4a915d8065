import t from 'tap';
import { createLogger } from '../telemetry/logger.ts';
import { logProblem } from './errors.ts';
import { ProblemError } from './problems.ts';

t.test('a problem is logged by what it says about the sidecar', async (t) => {
  const lines: { level: string; msg: string; code?: string; err?: { stack?: string } }[] = [];
  const logger = createLogger('debug', { write: (line: string) => lines.push(JSON.parse(line)) });
  const request = { method: 'POST', route: '/v1/publish/:topic' };
  const logged = (problem: ProblemError, error: unknown = problem) => {
    lines.length = 0;
    logProblem(logger, problem, error, request);
    return lines.map(({ level, msg, code, err }) => ({ level, msg, code, stack: err?.stack !== undefined }));
  };
  t.same(logged(new ProblemError('INTERNAL', 'x'), new TypeError('a bug')), [
    { level: 'error', msg: 'request failed', code: undefined, stack: true },
  ]);
  t.same(logged(new ProblemError('BROKER_UNAVAILABLE', 'the broker did not confirm the message: message nacked')), [
    { level: 'warn', msg: 'the broker could not do it', code: 'BROKER_UNAVAILABLE', stack: false },
  ]);
  t.same(logged(new ProblemError('UPSTREAM_TIMEOUT', 'no answer within 100 ms')), [
    { level: 'warn', msg: 'outbound call failed', code: 'UPSTREAM_TIMEOUT', stack: false },
  ]);
  for (const code of ['CIRCUIT_OPEN', 'SHUTTING_DOWN'] as const) {
    t.same(logged(new ProblemError(code, 'x')), [{ level: 'debug', msg: 'refused', code, stack: false }], code);
  }
  for (const code of ['REQUEST_INVALID', 'BACKPRESSURE', 'BULKHEAD_FULL', 'NOT_FOUND'] as const) {
    t.same(logged(new ProblemError(code, 'x')), [], `${code}: not logged`);
  }
});
