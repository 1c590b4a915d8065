// No acknowledged message is lost when things break: the broker restarts
// mid-stream (and the consumers come back exactly once each), the sidecar is
// killed mid-consumption, the app answers 5xx for a while, the sidecar restarts
// between two attempts, or is stopped with pushes in flight. Real broker
// nodes, real sidecar processes, a real HTTP app.
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { answer, startApp, type TestApp } from './support/app-server.ts';
import { BROKER_URL, deleteQueuesAtEnd, uniqueTopic } from './support/in-process.ts';
import { startRabbitNode } from './support/rabbitmq-node.ts';
import { startSidecar } from './support/sidecar-process.ts';
import { statusOf, until } from './support/wait.ts';

const FAST_RETRY = { maxAttempts: 8, initial: '1s', max: '2s', multiplier: 2, jitter: 0 };

/** Publishes until the sidecar answers 202, as a client that retries 503s and dropped connections does. */
async function publishReliably(api: string, topic: string, id: string): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    try {
      const response = await fetch(`${api}/v1/publish/${topic}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': id },
        body: JSON.stringify({ id }),
        signal: AbortSignal.timeout(5_000),
      });
      await response.arrayBuffer();
      if (response.status === 202) return;
    } catch {
      // The sidecar is restarting or the connection dropped: try again.
    }
    await sleep(100);
  }
  throw new Error(`could not publish ${id}`);
}

/** Ids the app answered 2xx for. */
const acceptedIds = (app: TestApp, status = () => 200) => {
  const ids = new Set<string>();
  app.handle((request, response) => {
    const code = status();
    if (code < 300) ids.add(String(request.headers['ce-id']));
    response.writeHead(code).end();
  });
  return ids;
};

interface Metadata {
  broker: { state: string };
  subscriptions: { state: string }[];
}
const getJson = async <T>(url: string): Promise<T> => (await (await fetch(url)).json()) as T;
const deadLettersOf = (api: string) =>
  getJson<{ messages: unknown[] }>(`${api}/v1/subscriptions/orders/deadletters`).then((body) => body.messages);

const ids = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => `${prefix}-${index}`);

t.test('broker restarts mid-stream: every confirmed message is delivered, consumers come back once', async (t) => {
  const node = await startRabbitNode(t, 'outrigger-test-recovery');
  const app = await startApp(t);
  const delivered = acceptedIds(app);
  const topic = uniqueTopic('restarts');
  const sidecar = await startSidecar(t, {
    appId: 'restarts',
    app: { port: app.port },
    broker: { url: node.url, reconnect: { initial: '100ms', max: '500ms' } },
    subscriptions: [
      { name: 'a', topic, route: '/a', retry: FAST_RETRY },
      { name: 'b', topic: `${topic}.other`, route: '/b', retry: FAST_RETRY },
    ],
  });
  await until('ready', async () => (await statusOf(`${sidecar.ops}/readyz`)) === 200, { timeoutMs: 15_000 });

  const all = ids('restart', 300);
  const publishing = (async () => {
    for (const id of all) await publishReliably(sidecar.api, topic, id);
  })();
  for (let restart = 1; restart <= 5; restart++) {
    await until(
      'some progress between restarts',
      () => delivered.size >= restart * 20 || delivered.size === all.length,
      {
        timeoutMs: 30_000,
      },
    );
    await node.stopApp();
    await sleep(300);
    await node.startApp();
  }
  await publishing;
  await until('every confirmed message delivered', () => delivered.size === all.length, { timeoutMs: 60_000 });
  t.equal(delivered.size, all.length, `all ${all.length} published messages reached the app`);

  await until('ready after the last restart', async () => (await statusOf(`${sidecar.ops}/readyz`)) === 200, {
    timeoutMs: 15_000,
  });
  const consumers = (await node.ctl('list_consumers', '--quiet', '--no-table-headers', 'queue_name'))
    .split('\n')
    .filter((line) => line.trim() !== '')
    .sort();
  t.same(consumers, [`restarts:${topic}`, `restarts:${topic}.other`], 'exactly one consumer per subscription');
  const metrics = await (await fetch(`${sidecar.ops}/metrics`)).text();
  t.match(metrics, /^outrigger_broker_connects_total 6$/m, 'five recoveries');
});

t.test('the sidecar is killed mid-consumption: the unacknowledged messages come back', async (t) => {
  const app = await startApp(t);
  const topic = uniqueTopic('sigkill');
  deleteQueuesAtEnd(t, `sigkill:${topic}`);
  const delivered = new Set<string>();
  app.handle((request, response) => {
    // A slow app, so that many deliveries are in flight when the sidecar dies.
    setTimeout(() => {
      delivered.add(String(request.headers['ce-id']));
      response.writeHead(200).end();
    }, 20);
  });
  const config = {
    appId: 'sigkill',
    app: { port: app.port },
    broker: { url: BROKER_URL },
    subscriptions: [{ name: 'orders', topic, route: '/orders', concurrency: 8, retry: FAST_RETRY }],
  };
  const first = await startSidecar(t, config);
  await until('ready', async () => (await statusOf(`${first.ops}/readyz`)) === 200);
  const all = ids('kill', 300);
  await Promise.all(all.map((id) => publishReliably(first.api, topic, id)));
  await until('some deliveries', () => delivered.size >= 50, { timeoutMs: 20_000 });
  t.same(await first.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });
  t.ok(delivered.size < all.length, `killed after ${delivered.size} of ${all.length}`);

  const second = await startSidecar(t, config);
  await until('every message delivered', () => delivered.size === all.length, { timeoutMs: 30_000 });
  t.equal(delivered.size, all.length, 'nothing lost');
  t.same(await second.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('a 5xx storm: messages wait in the broker and all get through once the app recovers', async (t) => {
  const app = await startApp(t);
  const topic = uniqueTopic('storm');
  deleteQueuesAtEnd(t, `storm:${topic}`);
  let storming = true;
  const attempts = new Map<string, number>();
  const delivered = new Set<string>();
  app.handle((request, response) => {
    const id = String(request.headers['ce-id']);
    attempts.set(id, (attempts.get(id) ?? 0) + 1);
    if (storming) return void response.writeHead(503).end('overloaded');
    delivered.add(id);
    response.writeHead(200).end();
  });
  const sidecar = await startSidecar(t, {
    appId: 'storm',
    app: { port: app.port },
    broker: { url: BROKER_URL },
    subscriptions: [{ name: 'orders', topic, route: '/orders', retry: FAST_RETRY }],
  });
  await until('ready', async () => (await statusOf(`${sidecar.ops}/readyz`)) === 200);
  const all = ids('storm', 100);
  await Promise.all(all.map((id) => publishReliably(sidecar.api, topic, id)));
  await sleep(3_500);
  storming = false;
  await until('every message delivered after the storm', () => delivered.size === all.length, { timeoutMs: 20_000 });
  const most = Math.max(...attempts.values());
  // Back-off 1 s, 2 s, 2 s...: a 3.5 s storm costs each message at most 4 tries, not a hot loop.
  t.ok(most <= 5, `each message was tried at most ${most} times`);
  t.same(await deadLettersOf(sidecar.api), [], 'nothing dead-lettered');
});

t.test('a retry waits in the broker across a sidecar restart', async (t) => {
  const app = await startApp(t);
  const topic = uniqueTopic('retry-restart');
  deleteQueuesAtEnd(t, `retry-restart:${topic}`);
  app.handle(answer(503));
  const config = {
    appId: 'retry-restart',
    app: { port: app.port },
    broker: { url: BROKER_URL },
    subscriptions: [
      { name: 'orders', topic, route: '/orders', retry: { maxAttempts: 3, initial: '3s', multiplier: 1, jitter: 0 } },
    ],
  };
  const first = await startSidecar(t, config);
  await until('ready', async () => (await statusOf(`${first.ops}/readyz`)) === 200);
  await publishReliably(first.api, topic, 'survivor');
  await until('the first attempt', () => app.received.length === 1);
  t.same(await first.stop('SIGTERM'), { code: 0, signal: null });

  app.handle(answer(200));
  const second = await startSidecar(t, config);
  await until('the second attempt', () => app.received.length === 2, { timeoutMs: 10_000 });
  const [one, two] = app.received;
  t.equal(two?.headers['outrigger-attempt'], '2', 'counted as the second attempt');
  t.equal(two?.headers['ce-id'], 'survivor');
  t.ok((two?.at ?? 0) - (one?.at ?? 0) >= 3_000, 'after the back-off');
  await sleep(500);
  t.equal(app.received.length, 2, 'delivered once more, not again');
  await second.stop('SIGTERM');
});

t.test('SIGTERM with pushes in flight: they finish, the rest goes back without counting an attempt', async (t) => {
  const app = await startApp(t);
  const topic = uniqueTopic('graceful');
  deleteQueuesAtEnd(t, `graceful:${topic}`);
  app.handle((_request, response) => {
    setTimeout(() => response.writeHead(200).end(), 1_000);
  });
  const config = {
    appId: 'graceful',
    app: { port: app.port },
    broker: { url: BROKER_URL },
    shutdown: { grace: '10s' },
    subscriptions: [{ name: 'orders', topic, route: '/orders', concurrency: 2, prefetch: 10, retry: FAST_RETRY }],
  };
  const first = await startSidecar(t, config);
  await until('ready', async () => (await statusOf(`${first.ops}/readyz`)) === 200);
  const all = ids('graceful', 10);
  await Promise.all(all.map((id) => publishReliably(first.api, topic, id)));
  await until('two pushes in flight', () => app.received.length === 2);
  const stopping = Date.now();
  t.same(await first.stop('SIGTERM'), { code: 0, signal: null }, 'exits 0');
  t.ok(Date.now() - stopping >= 500, 'waited for the pushes in flight');
  t.equal(app.received.length, 2, 'nothing new was pushed after SIGTERM');

  const second = await startSidecar(t, config);
  await until('the rest delivered', () => new Set(app.received.map((r) => r.headers['ce-id'])).size === all.length, {
    timeoutMs: 15_000,
  });
  await sleep(1_500);
  const later = app.received.slice(2);
  t.equal(later.length, all.length - 2, 'the two finished ones were acked: not delivered again');
  t.ok(
    later.every((request) => request.headers['outrigger-attempt'] === '1'),
    'handed back without an attempt counted',
  );
  t.same(await deadLettersOf(second.api), [], 'nothing dead-lettered because of the shutdown');
  await second.stop('SIGTERM');
});

t.test("while the app's health check fails, nothing is pushed; delivery resumes when it recovers", async (t) => {
  const app = await startApp(t);
  const topic = uniqueTopic('gating');
  deleteQueuesAtEnd(t, `gating:${topic}`);
  let healthy = false;
  const pushed: string[] = [];
  app.handle((request, response) => {
    if (request.path === '/healthz') return void response.writeHead(healthy ? 200 : 503).end();
    pushed.push(String(request.headers['ce-id']));
    response.writeHead(200).end();
  });
  const sidecar = await startSidecar(t, {
    appId: 'gating',
    app: { port: app.port, healthPath: '/healthz', healthInterval: '500ms' },
    broker: { url: BROKER_URL },
    subscriptions: [{ name: 'orders', topic, route: '/orders', retry: FAST_RETRY }],
  });
  await until('the broker connected', async () => {
    const metadata = await getJson<Metadata>(`${sidecar.api}/v1/metadata`);
    return metadata.broker.state === 'connected' && metadata.subscriptions[0]?.state === 'paused';
  });
  await publishReliably(sidecar.api, topic, 'waits');
  await sleep(1_500);
  t.same(pushed, [], 'not pushed while the app is unhealthy');
  const report = await (await fetch(`${sidecar.ops}/readyz`)).json();
  t.match(report, { ready: false, checks: { app: { ok: false }, subscriptions: { ok: true } } });

  healthy = true;
  await until('delivered after the app recovered', () => pushed.length === 1, { timeoutMs: 5_000 });
  t.equal(await statusOf(`${sidecar.ops}/readyz`), 200, 'ready');
  healthy = false;
  await until('paused again', async () => {
    const metadata = await getJson<Metadata>(`${sidecar.api}/v1/metadata`);
    return metadata.subscriptions[0]?.state === 'paused';
  });
  await sidecar.stop('SIGTERM');
});

t.test('the app restarts: refused pushes go back without an attempt, delivery resumes when it is back', async (t) => {
  const app = await startApp(t);
  const topic = uniqueTopic('app-restart');
  deleteQueuesAtEnd(t, `app-restart:${topic}`);
  const sidecar = await startSidecar(t, {
    appId: 'app-restart',
    app: { port: app.port, healthInterval: '10s' },
    broker: { url: BROKER_URL },
    subscriptions: [{ name: 'orders', topic, route: '/orders', retry: { ...FAST_RETRY, maxAttempts: 2 } }],
  });
  await until('ready', async () => (await statusOf(`${sidecar.ops}/readyz`)) === 200);
  await app.stop();
  const all = ids('refused', 20);
  await Promise.all(all.map((id) => publishReliably(sidecar.api, topic, id)));
  await until('delivery paused', async () => {
    const metadata = await getJson<Metadata>(`${sidecar.api}/v1/metadata`);
    return metadata.subscriptions[0]?.state === 'paused';
  });
  await sleep(2_500);
  await app.start();
  await until('all delivered', () => new Set(app.received.map((r) => r.headers['ce-id'])).size === all.length, {
    timeoutMs: 10_000,
  });
  t.ok(
    app.received.every((request) => request.headers['outrigger-attempt'] === '1'),
    'no attempt was counted while the app was away',
  );
  t.same(await deadLettersOf(sidecar.api), [], 'nothing dead-lettered (maxAttempts is 2)');
  await sidecar.stop('SIGTERM');
});
