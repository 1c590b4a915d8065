// The app API over inject(): problem+json, auth, metadata, OpenAPI.
import t, { type Test } from 'tap';
import { testEnv } from '../test/support/sidecar-process.ts';
import { requestCheck } from './api/auth.ts';
import { buildApp } from './app.ts';
import { RabbitBroker } from './broker/rabbitmq/rabbit-broker.ts';
import { parseConfig } from './config/load.ts';
import type { ConfigInput } from './config/schema.ts';
import { Subscriptions } from './delivery/subscriptions.ts';
import { Outbound } from './outbound/outbound.ts';
import { createLogger } from './telemetry/logger.ts';
import { Metrics } from './telemetry/metrics.ts';
import { VERSION } from './version.ts';

const TOKEN = 'correct-horse-battery-staple';

async function appWith(input: Partial<ConfigInput> = {}, state = { closing: false }) {
  const config = parseConfig({ appId: 'orders', ...input });
  const logger = createLogger('silent');
  const metrics = new Metrics({ version: VERSION, appId: config.appId });
  // A real connection object, never started: the broker reads as "connecting".
  const broker = new RabbitBroker({
    url: config.broker.url,
    heartbeatMs: 15_000,
    reconnect: { initialMs: 100, maxMs: 1_000 },
    appId: config.appId,
    logger,
    metrics,
  });
  // Never started either: the subscriptions exist, with no consumer yet.
  const subscriptions = new Subscriptions({ config, broker, metrics, logger });
  const outbound = Outbound.create(config.targets, { metrics, logger, env: testEnv() });
  const app = await buildApp({
    config,
    logger,
    broker,
    metrics,
    subscriptions,
    outbound,
    checkRequest: requestCheck(config.auth.apiToken, () => state.closing),
  });
  t.teardown(async () => {
    await app.close();
    await outbound.close();
  });
  return { app, metrics };
}

const isProblem = (
  t: Test,
  response: { headers: Record<string, unknown>; json: () => unknown },
  code: string,
  status: number,
) => {
  t.match(response.headers['content-type'], /^application\/problem\+json/);
  const body = response.json() as Record<string, unknown>;
  t.match(body, { code, status, type: `https://outrigger.dev/docs/errors#${code.toLowerCase().replaceAll('_', '-')}` });
  t.type(body.title, 'string');
  t.type(body.detail, 'string');
  t.notOk('stack' in body, 'no stack trace');
};

t.test('an unknown route is a 404 problem', async (t) => {
  const { app } = await appWith();
  const response = await app.inject({ method: 'GET', url: '/v1/nothing?x=1' });
  t.equal(response.statusCode, 404);
  isProblem(t, response, 'NOT_FOUND', 404);
  t.equal(response.json().detail, 'no route for GET /v1/nothing');
});

t.test('an unexpected failure is a 500 problem without internals', async (t) => {
  const { app } = await appWith();
  app.get('/v1/boom', async () => {
    throw new Error('secret internal detail at amqp://guest:guest@10.1.2.3');
  });
  const response = await app.inject({ method: 'GET', url: '/v1/boom' });
  t.equal(response.statusCode, 500);
  isProblem(t, response, 'INTERNAL', 500);
  t.notMatch(response.body, /secret|10\.1\.2\.3|guest/);
});

t.test('metadata describes the app, its subscriptions and targets', async (t) => {
  const { app } = await appWith({
    app: { port: 8080 },
    subscriptions: [{ name: 'new-orders', topic: 'orders.created', route: '/events/orders' }],
    targets: [{ name: 'payments', baseUrl: 'https://payments.example/api' }],
  });
  const response = await app.inject({ method: 'GET', url: '/v1/metadata' });
  t.equal(response.statusCode, 200);
  t.same(response.json(), {
    appId: 'orders',
    version: VERSION,
    runtime: { node: process.versions.node },
    broker: { state: 'connecting', address: 'amqp://guest:***@127.0.0.1:5672' },
    subscriptions: [
      {
        name: 'new-orders',
        topic: 'orders.created',
        mode: 'push',
        group: 'orders',
        queue: 'orders:orders.created',
        deadLetterQueue: 'orders:orders.created:dlq',
        state: 'waiting-for-broker',
        detail: 'not started',
      },
    ],
    app: { healthy: false },
    targets: [{ name: 'payments', baseUrl: 'https://payments.example/api', circuit: 'closed' }],
  });
});

t.test('the OpenAPI document is generated from the routes', async (t) => {
  const { app } = await appWith();
  const response = await app.inject({ method: 'GET', url: '/v1/openapi.json' });
  t.equal(response.statusCode, 200);
  const doc = response.json();
  t.equal(doc.openapi, '3.1.0');
  t.equal(doc.info.version, VERSION);
  const metadata = doc.paths['/v1/metadata'].get.responses['200'].content['application/json'].schema;
  t.same(Object.keys(metadata.properties).sort(), [
    'app',
    'appId',
    'broker',
    'outbox',
    'runtime',
    'subscriptions',
    'targets',
    'version',
  ]);
  t.notOk(doc.paths['/v1/openapi.json'], 'the document itself is not listed');
  // The outbound proxy is not a fastify route; its paths are written out.
  const outbound = doc.paths['/v1/outbound/{target}/{path}'];
  t.same(Object.keys(outbound).sort(), ['delete', 'get', 'head', 'options', 'patch', 'post', 'put'], 'no TRACE');
  t.same(
    outbound.get.parameters.map((p: { name: string }) => p.name),
    ['target', 'path'],
  );
  t.match(outbound.post.responses['503'].description, /CIRCUIT_OPEN, SHUTTING_DOWN/);
  t.ok(doc.paths['/v1/outbound/{target}'].get, 'a target without a path');
  t.same(doc.security, [], 'no token configured, none required');
});

t.test('with OUTRIGGER_API_TOKEN every app API request needs the token', async (t) => {
  const { app } = await appWith({ auth: { apiToken: TOKEN } });
  for (const headers of [{}, { 'outrigger-api-token': 'wrong' }, { 'outrigger-api-token': `${TOKEN}x` }]) {
    const response = await app.inject({ method: 'GET', url: '/v1/metadata', headers });
    t.equal(response.statusCode, 401, JSON.stringify(headers));
    isProblem(t, response, 'UNAUTHORIZED', 401);
  }
  const unknown = await app.inject({ method: 'GET', url: '/v1/nothing' });
  t.equal(unknown.statusCode, 401, 'routes are not revealed without the token');
  const ok = await app.inject({ method: 'GET', url: '/v1/metadata', headers: { 'outrigger-api-token': TOKEN } });
  t.equal(ok.statusCode, 200);
  const doc = await app.inject({ method: 'GET', url: '/v1/openapi.json', headers: { 'outrigger-api-token': TOKEN } });
  t.same(doc.json().security, [{ apiToken: [] }]);
});

t.test('during shutdown new requests are refused with 503', async (t) => {
  const state = { closing: false };
  const { app } = await appWith({}, state);
  state.closing = true;
  const response = await app.inject({ method: 'GET', url: '/v1/metadata' });
  t.equal(response.statusCode, 503);
  isProblem(t, response, 'SHUTTING_DOWN', 503);
});

t.test('requests are counted by route pattern, not raw path', async (t) => {
  const { app, metrics } = await appWith();
  await app.inject({ method: 'GET', url: '/v1/metadata' });
  await app.inject({ method: 'GET', url: '/v1/unknown/123' });
  const text = await metrics.registry.metrics();
  t.match(text, /outrigger_api_request_duration_seconds_count\{route="\/v1\/metadata",method="GET",status="200"\} 1/);
  t.match(text, /outrigger_api_request_duration_seconds_count\{route="unmatched",method="GET",status="404"\} 1/);
  t.notMatch(text, /route="[^"]*123/, 'no raw path as a label');
});
