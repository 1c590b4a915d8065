// {METHOD} /v1/outbound/{target}/{path...}: the ambassador (API.md, "Outbound
// calls"), answered on node:http directly, in front of fastify (api/server.ts
// hands it every request first). The proxy is the hottest path of the API and
// takes nothing from fastify: no body parsing (bodies stream to the target),
// no validation, no serialisation. Going through fastify's request lifecycle
// cost some 13 µs of CPU per call, a fifth of all the sidecar spends on it
// (docs/benchmarks.md, "Outbound calls"). What fastify's hooks do for the
// other routes it does with the same functions: the shutdown check, the API
// token, the SERVER span, the request metric, problem details for errors.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { parseDuration } from '../config/duration.ts';
import { LONGEST_TIMER_MS } from '../config/fields.ts';
import { CallAborted } from '../outbound/attempt-result.ts';
import { drop } from '../outbound/exchange.ts';
import { Hangup } from '../outbound/hangup.ts';
import type { Outbound } from '../outbound/outbound.ts';
import { OUTBOUND_METHODS, type OutboundAnswer } from '../outbound/target-client.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { startServerSpan } from '../telemetry/server-spans.ts';
import { endHttpSpan, withSpan } from '../telemetry/spans.ts';
import type { RequestCheck } from './auth.ts';
import { logProblem, writeProblem } from './errors.ts';
import { isProblemError, ProblemError } from './problems.ts';

const PREFIX = '/v1/outbound/';
/** The route patterns, as the request metric and the SERVER span name them. */
const ROUTES = { target: '/v1/outbound/:target', path: '/v1/outbound/:target/*' } as const;
/** Recorded for a call whose app went away before its answer (nginx's "client closed request"). */
const APP_GONE = 499;
const METHODS: ReadonlySet<string> = new Set(OUTBOUND_METHODS);
/** The app's deadline for one call, a duration ("1500ms", "2s"): it can shorten the target's `deadline`. */
const TIMEOUT_HEADER = 'outrigger-timeout';

export interface OutboundProxyDeps {
  outbound: Outbound;
  metrics: Metrics;
  logger: Logger;
  /** Refuses calls while shutting down, and without the API token (api/auth.ts). */
  checkRequest: RequestCheck;
  /** True once shutdown began: an answer then says `connection: close`. */
  isClosing: () => boolean;
}

/** Takes the request when it is an outbound call (true), else leaves it to fastify (false): its NOT_FOUND. */
export type OutboundProxy = (request: IncomingMessage, response: ServerResponse) => boolean;

export function outboundProxy(deps: OutboundProxyDeps): OutboundProxy {
  return (request, response) => {
    const url = request.url ?? '';
    const method = request.method ?? '';
    if (!url.startsWith(PREFIX) || !METHODS.has(method)) return false;
    const queryAt = url.indexOf('?');
    const path = queryAt < 0 ? url : url.slice(0, queryAt);
    const slash = path.indexOf('/', PREFIX.length);
    const name = path.slice(PREFIX.length, slash < 0 ? undefined : slash);
    if (name === '') return false;
    const call: Call = {
      request,
      response,
      method,
      route: slash < 0 ? ROUTES.target : ROUTES.path,
      name,
      rest: slash < 0 ? '' : path.slice(slash),
      query: queryAt < 0 ? undefined : url.slice(queryAt + 1),
    };
    const started = performance.now();
    const span = startServerSpan(method, call.route, url, request.headers);
    const hangup = new Hangup();
    // The call is over once its answer is written (or its app gone) and its work has wound down:
    // an app that leaves mid-call ends it early, and its attempts' spans end after that.
    let open = 2;
    const over = () => {
      if (--open > 0) return;
      const status = response.headersSent ? response.statusCode : APP_GONE;
      deps.metrics.apiRequestDuration.observe(
        { route: call.route, method, status: String(status) },
        (performance.now() - started) / 1000,
      );
      if (span !== undefined) endHttpSpan(span, { status });
    };
    // 'close' comes once the answer is written, or when the connection goes first.
    response.once('close', () => {
      if (!response.writableFinished) hangup.hangUp();
      over();
    });
    withSpan(span, () =>
      forward(deps, call, hangup)
        .catch((error: unknown) => fail(deps, call, error))
        .finally(over),
    );
    return true;
  };
}

interface Call {
  request: IncomingMessage;
  response: ServerResponse;
  method: string;
  route: string;
  /** The target's name, as written in the URL. */
  name: string;
  /** The raw path after the target's name, and the raw query. */
  rest: string;
  query: string | undefined;
}

async function forward(deps: OutboundProxyDeps, call: Call, hangup: Hangup): Promise<void> {
  const refused = deps.checkRequest(call.request.headers);
  if (refused !== undefined) throw refused;
  const client = deps.outbound.get(call.name);
  if (client === undefined)
    throw new ProblemError('TARGET_UNKNOWN', `no outbound target named "${call.name}" is configured`);
  const checked = client.pathFor(call.rest, call.query);
  if (!checked.ok) throw new ProblemError('PATH_INVALID', `${checked.reason}; nothing was sent`);
  const asked = call.request.headers[TIMEOUT_HEADER];
  const deadline = asked === undefined ? undefined : askedDeadline(asked);
  const answer = await client.call({
    method: call.method,
    path: checked.path,
    headers: call.request.headers,
    request: call.request,
    hangup,
    deadline,
  });
  // While the sidecar stops, the app's connection closes after this answer (api/server.ts).
  if (deps.isClosing()) call.response.setHeader('connection', 'close');
  try {
    await writeAnswer(call.response, answer);
  } finally {
    answer.end();
  }
}

/** The deadline an outrigger-timeout header asks for, in ms; REQUEST_INVALID unless it is a duration above 0, at most 24d. */
function askedDeadline(value: string | string[]): number {
  const text = typeof value === 'string' ? value : value.join(', ');
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) {
    throw new ProblemError(
      'REQUEST_INVALID',
      `header ${TIMEOUT_HEADER}: ${JSON.stringify(text.slice(0, 64))} is not a duration above 0, such as "1500ms" or "2s"; nothing was sent`,
    );
  }
  if (ms > LONGEST_TIMER_MS) {
    throw new ProblemError(
      'REQUEST_INVALID',
      `header ${TIMEOUT_HEADER}: ${JSON.stringify(text.slice(0, 64))} is longer than 24d, the longest deadline; nothing was sent`,
    );
  }
  return ms;
}

/** One write for a whole answer (status line, headers and body together); a stream with backpressure for a large one. */
async function writeAnswer(response: ServerResponse, answer: OutboundAnswer): Promise<void> {
  const { body } = answer;
  if (response.destroyed) {
    drop(body);
    return;
  }
  try {
    response.writeHead(answer.status, answer.headers);
  } catch (error) {
    drop(body); // a paused stream would hold the target's connection
    throw error;
  }
  if (Buffer.isBuffer(body)) {
    response.end(body);
    return;
  }
  // A target failing mid-answer, or the app going away, ends both sides; the status has been sent.
  await pipeline(body, response).catch(() => response.destroy());
}

/** A refused or failed call: problem details while nothing has been written, else the connection is closed. */
function fail(deps: OutboundProxyDeps, call: Call, error: unknown): void {
  const { response } = call;
  // The app went away: no one to answer, nothing to log (the call is counted as `aborted`).
  if (error instanceof CallAborted) {
    response.destroy();
    return;
  }
  const problem = isProblemError(error)
    ? error
    : new ProblemError('INTERNAL', 'the sidecar failed to handle the request; see its logs');
  logProblem(deps.logger, problem, error, { method: call.method, route: call.route });
  if (response.headersSent || response.destroyed) response.destroy();
  else writeProblem(response, problem);
}
