// One error handler for the whole app API (and the ops port): whatever goes
// wrong leaves as application/problem+json with a stable code, and nothing
// internal (stack, hostnames, credentials) leaks into the response. The
// outbound proxy, which answers on node:http directly, writes its problems
// with writeProblem().
import type { ServerResponse } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { formatPath } from '../config/load.ts';
import type { Logger } from '../telemetry/logger.ts';
import { isProblemError, ProblemError } from './problems.ts';

export const PROBLEM_JSON = 'application/problem+json; charset=utf-8';

export function sendProblem(reply: FastifyReply, problem: ProblemError, instance?: string): FastifyReply {
  return reply
    .code(problem.status)
    .headers(problem.options.headers ?? {})
    .header('content-type', PROBLEM_JSON)
    .send(JSON.stringify(problem.toBody(instance)));
}

/** sendProblem() for a response outside fastify. */
export function writeProblem(response: ServerResponse, problem: ProblemError): void {
  const body = JSON.stringify(problem.toBody());
  response.writeHead(problem.status, {
    ...problem.options.headers,
    'content-type': PROBLEM_JSON,
    'content-length': Buffer.byteLength(body),
  });
  response.end(body);
}

/**
 * Logs a problem the API answered, by what it says about the sidecar: an
 * INTERNAL one is a fault of the sidecar's (error, with its stack); a target
 * that timed out or could not be reached, or a broker that could not take a
 * publish or an operation, at warn with why (as a proxy logs an upstream
 * error), and without a stack: the sidecar did what it should. An open
 * circuit's refusals and shutdown's are states logged when they begin and end,
 * and counted in the metrics, so each answer is debug only: one line per
 * refused call at error level, with a stack, flooded the log while a circuit
 * was open. 4xx are not logged.
 */
export function logProblem(
  logger: Pick<Logger, 'error' | 'warn' | 'debug'>,
  problem: ProblemError,
  error: unknown,
  request: RequestFields,
): void {
  switch (problem.code) {
    case 'INTERNAL':
      logger.error({ err: error, ...request }, 'request failed');
      return;
    case 'UPSTREAM_TIMEOUT':
    case 'UPSTREAM_UNREACHABLE':
      logger.warn({ code: problem.code, detail: problem.detail, ...request }, 'outbound call failed');
      return;
    case 'BROKER_UNAVAILABLE':
      // Also a publish the broker nacked, or a dead-letter operation it failed, while connected: nothing else says so.
      logger.warn({ code: problem.code, detail: problem.detail, ...request }, 'the broker could not do it');
      return;
    default:
      if (problem.status >= 500) logger.debug({ code: problem.code, detail: problem.detail, ...request }, 'refused');
  }
}

interface RequestFields {
  method: string;
  route: string | undefined;
}

/** Turns any error thrown while handling a request into a ProblemError. */
export function toProblem(error: FastifyError): ProblemError {
  if (isProblemError(error)) return error;
  if (error.validation !== undefined) return new ProblemError('REQUEST_INVALID', describeValidation(error));
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ProblemError('BODY_TOO_LARGE', 'the request body is larger than the configured http.bodyLimit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ProblemError('UNSUPPORTED_MEDIA_TYPE', 'this route does not accept that content-type');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ProblemError('REQUEST_INVALID', 'the JSON body is empty');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ProblemError('REQUEST_INVALID', 'the body is not valid JSON');
  }
  if (error instanceof SyntaxError && error.statusCode === 400) {
    return new ProblemError('REQUEST_INVALID', 'the body is not valid JSON');
  }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new ProblemError('REQUEST_INVALID', error.message);
  }
  return new ProblemError('INTERNAL', 'the sidecar failed to handle the request; see its logs');
}

function describeValidation(error: FastifyError): string {
  const where = error.validationContext ?? 'request';
  const first = error.validation?.[0];
  if (first === undefined) return `${where}: invalid`;
  // instancePath is a JSON pointer ("/1/data"): shown as the config loader shows paths ("body[1].data").
  const keys = first.instancePath
    .split('/')
    .filter((key) => key !== '')
    .map((key) => (/^\d+$/.test(key) ? Number(key) : key));
  const path = keys.length === 0 ? '' : formatPath([where, ...keys]).slice(where.length);
  return `${where}${path}: ${first.message}`;
}

export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const problem = toProblem(error);
    logProblem(request.log, problem, error, { method: request.method, route: request.routeOptions.url });
    return sendProblem(reply, problem);
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) =>
    sendProblem(reply, new ProblemError('NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`)),
  );
}
