// The outbound proxy in front of fastify, on a real server: which requests it
// takes, and what it answers before any target is called (the calls
// themselves: sidecar/test/outbound*.test.ts).
import { request } from 'node:http';
import t, { type Test } from 'tap';
import { testEnv } from '../../test/support/sidecar-process.ts';
import { parseConfig } from '../config/load.ts';
import { Outbound } from '../outbound/outbound.ts';
import { createLogger } from '../telemetry/logger.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { VERSION } from '../version.ts';
import { requestCheck } from './auth.ts';
import { outboundProxy } from './outbound.ts';
import { ApiServer } from './server.ts';

const TOKEN = 'correct-horse-battery-staple';

interface LogLine {
  level: string;
  msg: string;
  err?: unknown;
  code?: string;
}

async function proxyWith(t: Test, options: { closing?: boolean; token?: string; lines?: LogLine[] } = {}) {
  const config = parseConfig({
    appId: 'orders',
    // Nothing listens there: a call that gets past the checks is UPSTREAM_UNREACHABLE, and opens the circuit.
    targets: [{ name: 'payments', baseUrl: 'http://127.0.0.1:9/api', circuitBreaker: { consecutiveFailures: 1 } }],
  });
  const { lines } = options;
  const logger =
    lines === undefined
      ? createLogger('silent')
      : createLogger('debug', { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
  const metrics = new Metrics({ version: VERSION, appId: config.appId });
  const outbound = Outbound.create(config.targets, { metrics, logger, env: testEnv() });
  const isClosing = () => options.closing === true;
  const proxy = outboundProxy({
    outbound,
    metrics,
    logger,
    checkRequest: requestCheck(options.token, isClosing),
    isClosing,
  });
  // What fastify would answer: the proxy left the request to it.
  const server = new ApiServer((request, response) => {
    if (!proxy(request, response)) response.writeHead(404, { 'x-answered-by': 'fastify' }).end();
  });
  const [address] = await server.listen('127.0.0.1', 0);
  t.teardown(async () => {
    await server.close();
    await outbound.close();
  });
  const port = address?.port as number;
  return { metrics, port, call: (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${port}${path}`, init) };
}

/** A request as written, with no URL normalisation (fetch resolves `%2e%2e`) and any method (fetch refuses TRACE). */
const raw = (port: number, method: string, path: string) =>
  new Promise<{ status: number; by: unknown; body: string }>((resolve, reject) => {
    request({ host: '127.0.0.1', port, method, path }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, by: response.headers['x-answered-by'], body }),
      );
    })
      .on('error', reject)
      .end();
  });

const problemOf = async (t: Test, response: Response) => {
  t.match(response.headers.get('content-type'), /^application\/problem\+json/);
  return (await response.json()) as { code: string; status: number; detail: string };
};

t.test('only outbound calls are the proxy’s; the rest goes to fastify', async (t) => {
  const { call, port } = await proxyWith(t);
  for (const [method, path] of [
    ['TRACE', '/v1/outbound/payments/x'],
    ['GET', '/v1/outbound/'],
    ['GET', '/v1/outbound//x'],
    ['GET', '/v1/outboundx/payments'],
    ['GET', '/v1/publish/x'],
  ] as const) {
    t.equal((await raw(port, method, path)).by, 'fastify', `${method} ${path}`);
  }
  const unknown = await call('/v1/outbound/nobody/x?y=1');
  t.equal(unknown.status, 404);
  t.match(await problemOf(t, unknown), { code: 'TARGET_UNKNOWN', detail: /"nobody"/ });
  const bare = await call('/v1/outbound/nobody');
  t.match(await problemOf(t, bare), { code: 'TARGET_UNKNOWN' }, 'the target alone, no path');
});

t.test('a path that leaves the base is PATH_INVALID, and nothing is sent', async (t) => {
  const { port } = await proxyWith(t);
  const response = await raw(port, 'GET', '/v1/outbound/payments/%2e%2e/admin');
  t.equal(response.status, 400);
  t.match(JSON.parse(response.body), { code: 'PATH_INVALID', detail: /nothing was sent/ });
});

t.test('a failing target is logged at warn with why; the refusals of its open circuit at debug only', async (t) => {
  const lines: LogLine[] = [];
  const { call } = await proxyWith(t, { lines });
  t.equal((await problemOf(t, await call('/v1/outbound/payments/x'))).code, 'UPSTREAM_UNREACHABLE');
  for (let i = 0; i < 20; i++)
    t.equal((await problemOf(t, await call('/v1/outbound/payments/x'))).code, 'CIRCUIT_OPEN');
  const failed = lines.filter((line) => line.msg === 'outbound call failed');
  t.equal(failed.length, 1, 'the failed call: one line');
  t.match(failed[0], { level: 'warn', code: 'UPSTREAM_UNREACHABLE' });
  t.equal(failed[0]?.err, undefined, 'no stack: the target failed, not the sidecar');
  t.equal(
    lines.filter((line) => line.msg === 'refused' && line.level === 'debug' && line.code === 'CIRCUIT_OPEN').length,
    20,
    'each refusal at debug',
  );
  t.same(
    lines.filter((line) => line.level === 'error' || line.level === 'fatal'),
    [],
    'nothing at error level: the sidecar did what it should',
  );
});

t.test('during shutdown calls are refused with 503 SHUTTING_DOWN', async (t) => {
  const { call, metrics } = await proxyWith(t, { closing: true });
  const response = await call('/v1/outbound/payments/x', { method: 'POST', body: 'kept' });
  t.equal(response.status, 503);
  t.match(await problemOf(t, response), { code: 'SHUTTING_DOWN' });
  const scrape = await metrics.scrape();
  t.match(
    scrape,
    'outrigger_api_request_duration_seconds_count{route="/v1/outbound/:target/*",method="POST",status="503"} 1',
    'counted by route pattern, method and status',
  );
});

t.test('with a token configured, calls without it are UNAUTHORIZED', async (t) => {
  const { call } = await proxyWith(t, { token: TOKEN });
  for (const headers of [{}, { 'outrigger-api-token': 'wrong' }]) {
    const response = await call('/v1/outbound/payments/x', { headers });
    t.equal(response.status, 401);
    t.match(await problemOf(t, response), { code: 'UNAUTHORIZED' });
  }
  const guessed = await call('/v1/outbound/nobody/x');
  t.equal(guessed.status, 401, 'without it, an unknown target is not told apart from a known one');
  const unknown = await call('/v1/outbound/nobody/x', { headers: { 'outrigger-api-token': TOKEN } });
  t.equal(unknown.status, 404, 'with the token, the call goes on');
});
