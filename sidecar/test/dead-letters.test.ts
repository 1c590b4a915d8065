// The dead letters of a push subscription against the real broker and a real
// HTTP app: what gets parked and why, listing without removing, replay with
// the attempt reset, delete, and the errors of the dead-letter API.
import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { answer, startApp, type TestApp } from './support/app-server.ts';
import { inspect } from './support/in-process.ts';
import { attemptOf, deliveries, messageCount, publish, requestsFor, startPush } from './support/push.ts';
import { until } from './support/wait.ts';

// Every test waits for real retries (whole seconds in the broker's delay cascade).
t.setTimeout(90_000);

interface DeadLetter {
  id: string;
  topic: string;
  contentType?: string;
  data?: unknown;
  dataBase64?: string;
  headers: Record<string, string>;
  publishedAt?: string;
  reason: string;
  lastStatus?: number;
  lastError?: string;
  attempts: number;
  deadLetteredAt?: string;
}

interface Problem {
  code: string;
  status: number;
  detail: string;
}

const asJson = { 'content-type': 'application/json' };

async function list(api: string, name: string, query = ''): Promise<DeadLetter[]> {
  const response = await fetch(`${api}/v1/subscriptions/${name}/deadletters${query}`);
  if (response.status !== 200) throw new Error(`GET deadletters answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { messages: DeadLetter[] }).messages;
}

const replay = (api: string, name: string, body: string) =>
  fetch(`${api}/v1/subscriptions/${name}/deadletters/replay`, { method: 'POST', body, headers: asJson });

const remove = (api: string, name: string, id: string) =>
  fetch(`${api}/v1/subscriptions/${name}/deadletters/${encodeURIComponent(id)}`, { method: 'DELETE' });

/** Publishes `ids` (as idempotency keys and bodies) to an app answering 422, and waits until all are parked. */
async function parkRejected(app: TestApp, setup: Awaited<ReturnType<typeof startPush>>, ids: string[]): Promise<void> {
  app.handle(answer(422));
  for (const id of ids)
    await publish(setup.api, setup.topic, id, { 'idempotency-key': id, 'content-type': 'text/plain' });
  await until(
    `${ids.length} dead letters`,
    async () => (await deliveries(setup.sidecar, setup.name, 'dead_lettered')) >= ids.length,
  );
}

t.test('after maxAttempts: parked with why, listed without being removed, replayed with attempt 1', async (t) => {
  const app = await startApp(t);
  app.handle((_request, response) => void response.writeHead(500).end('boom: the database is down'));
  const setup = await startPush(t, app);
  const { api, topic, sidecar, name, deadLetterQueue } = setup;
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const published = Date.now();
  await publish(api, topic, '{"order": 7}', {
    'idempotency-key': 'order-7',
    'content-type': 'application/json',
    'ce-type': 'com.example.order',
    traceparent,
  });
  await until('dead-lettered', async () => (await deliveries(sidecar, name, 'dead_lettered')) === 1, {
    timeoutMs: 10_000,
  });
  t.same(requestsFor(app, 'order-7').map(attemptOf), [1, 2, 3], 'three attempts, then parked');

  const first = await list(api, name);
  t.equal(first.length, 1);
  const [parked] = first;
  t.match(parked, {
    id: 'order-7',
    topic,
    contentType: 'application/json',
    data: { order: 7 },
    headers: { 'ce-type': 'com.example.order', traceparent },
    reason: 'max-attempts',
    lastStatus: 500,
    lastError: 'the app answered 500: boom: the database is down',
    attempts: 3,
  });
  t.notOk(
    Object.keys(parked?.headers ?? {}).some((header) => header.startsWith('outrigger-') || header.startsWith('x-')),
    'only the application headers',
  );
  const parkedAt = Date.parse(parked?.deadLetteredAt ?? '');
  t.ok(parkedAt >= published - 1_000 && parkedAt <= Date.now(), `deadLetteredAt ${parked?.deadLetteredAt}`);
  t.ok(Date.parse(parked?.publishedAt ?? '') >= published - 1_000, `publishedAt ${parked?.publishedAt}`);
  t.same(await list(api, name), first, 'listing again gives the same: nothing was removed');
  t.equal(await messageCount(deadLetterQueue), 1, 'still parked in the dead-letter queue');

  app.handle(answer(200));
  const replayed = await replay(api, name, JSON.stringify({ ids: ['order-7'] }));
  t.equal(replayed.status, 200);
  t.same(await replayed.json(), { replayed: ['order-7'] });
  await until('delivered again', () => requestsFor(app, 'order-7').length === 4);
  const again = requestsFor(app, 'order-7')[3];
  t.equal(again?.headers['outrigger-attempt'], '1', 'the attempt starts over');
  t.equal(again?.body.toString(), '{"order": 7}');
  t.match(again?.headers, { 'content-type': 'application/json', 'ce-type': 'com.example.order', traceparent });
  await until('acked', async () => (await deliveries(sidecar, name, 'acked')) === 1);
  t.same(await list(api, name), [], 'no longer parked');
  t.equal(await messageCount(deadLetterQueue), 0);
});

t.test('a replayed message gets every attempt again, and is parked again after the last', async (t) => {
  const app = await startApp(t);
  app.handle(answer(503));
  const { api, topic, sidecar, name } = await startPush(t, app, {
    subscription: { retry: { maxAttempts: 2, initial: '1s', multiplier: 1, jitter: 0 } },
  });
  await publish(api, topic, 'again', { 'idempotency-key': 'again-1' });
  await until('dead-lettered', async () => (await deliveries(sidecar, name, 'dead_lettered')) === 1);
  t.match(await list(api, name), [{ id: 'again-1', attempts: 2, reason: 'max-attempts', lastStatus: 503 }]);
  t.same(await (await replay(api, name, '{"all": true}')).json(), { replayed: ['again-1'] });
  await until('dead-lettered again', async () => (await deliveries(sidecar, name, 'dead_lettered')) === 2);
  t.same(requestsFor(app, 'again-1').map(attemptOf), [1, 2, 1, 2], 'two attempts, replay, two attempts');
  t.match(await list(api, name), [{ id: 'again-1', attempts: 2, reason: 'max-attempts' }]);
});

t.test('the last failure is what is recorded: a timeout after a 503 has no status', async (t) => {
  const app = await startApp(t);
  const held: ServerResponse[] = [];
  t.teardown(() => {
    for (const response of held) response.destroy();
  });
  app.handle((request, response) => {
    if (request.body.toString() === 'timeout-last') {
      if (attemptOf(request) === 1) answer(503)(request, response);
      else held.push(response);
    } else if (attemptOf(request) === 1) held.push(response);
    else answer(500)(request, response);
  });
  const { api, topic, sidecar, name } = await startPush(t, app, {
    subscription: { timeout: '300ms', retry: { maxAttempts: 2, initial: '1s', multiplier: 1, jitter: 0 } },
  });
  await publish(api, topic, 'timeout-last', { 'idempotency-key': 'timeout-last' });
  await publish(api, topic, 'status-last', { 'idempotency-key': 'status-last' });
  await until('both dead-lettered', async () => (await deliveries(sidecar, name, 'dead_lettered')) === 2, {
    timeoutMs: 10_000,
  });
  const parked = new Map((await list(api, name)).map((message) => [message.id, message]));
  const timedOut = parked.get('timeout-last');
  t.equal(timedOut?.reason, 'max-attempts');
  t.equal(timedOut?.attempts, 2);
  t.equal(timedOut?.lastError, 'no answer from the app within 300 ms');
  t.notOk('lastStatus' in (timedOut ?? {}), "the first attempt's 503 is not reported as the last status");
  t.match(parked.get('status-last'), { attempts: 2, lastStatus: 500, lastError: 'the app answered 500: status 500' });
});

t.test('GET lists oldest first, up to limit', async (t) => {
  const app = await startApp(t);
  const setup = await startPush(t, app);
  const ids = ['a-1', 'a-2', 'a-3'];
  await parkRejected(app, setup, ids);
  const { api, name } = setup;
  t.same(
    (await list(api, name)).map((message) => [message.id, message.reason, message.lastStatus, message.data]),
    ids.map((id) => [id, 'rejected', 422, id]),
  );
  t.same(
    (await list(api, name, '?limit=2')).map((message) => message.id),
    ['a-1', 'a-2'],
  );
  t.same(
    (await list(api, name, '?limit=1')).map((message) => message.id),
    ['a-1'],
  );
  t.same(
    (await list(api, name)).map((message) => message.id),
    ids,
    'still all there, in order',
  );
});

t.test('a quorum dead-letter queue keeps its order through listing with a limit and deleting', async (t) => {
  const app = await startApp(t);
  const setup = await startPush(t, app, { subscription: { queueType: 'quorum' } });
  const { api, name } = setup;
  const ids = ['q-1', 'q-2', 'q-3', 'q-4'];
  await parkRejected(app, setup, ids);
  // A quorum queue hands back held messages in order, but behind those it handed back before.
  for (const query of ['', '?limit=2', '', '?limit=1', '']) {
    t.same(
      (await list(api, name, query)).map((message) => message.id),
      ids.slice(0, query === '' ? ids.length : Number(query.slice(7))),
      `GET ${query || 'all'}: oldest first, nothing moved`,
    );
  }
  t.equal((await remove(api, name, 'q-2')).status, 200);
  t.same(
    (await list(api, name)).map((message) => message.id),
    ['q-1', 'q-3', 'q-4'],
    'deleting one kept the order of the rest',
  );
});

t.test("replay while the subscription's queue is gone: nothing is lost, the message stays parked", async (t) => {
  const app = await startApp(t);
  const setup = await startPush(t, app);
  const { api, name, queue, sidecar } = setup;
  await parkRejected(app, setup, ['lost-1']);
  app.handle(answer(200));
  const channel = await inspect(t);
  // An operator deletes the queue; the sidecar declares it again a few seconds later.
  await channel.deleteQueue(queue);
  await until('the consumer noticed', () => sidecar.subscriptions.get(name)?.consumer.state !== 'consuming');
  const replayed = await replay(api, name, '{"all": true}');
  t.equal(replayed.status, 200);
  t.same(await replayed.json(), { replayed: [] }, 'not reported as replayed: the broker dropped the copy');
  t.same(
    (await list(api, name)).map((message) => message.id),
    ['lost-1'],
    'still parked',
  );
  await until('consuming again', () => sidecar.subscriptions.get(name)?.consumer.state === 'consuming', {
    timeoutMs: 10_000,
  });
  t.same(await (await replay(api, name, '{"all": true}')).json(), { replayed: ['lost-1'] });
  await until('delivered', () => requestsFor(app, 'lost-1').length === 2);
  t.equal(requestsFor(app, 'lost-1')[1]?.headers['outrigger-attempt'], '1');
});

t.test('a message rejected while its dead-letter queue is gone is parked in the queue declared again', async (t) => {
  const app = await startApp(t);
  const setup = await startPush(t, app);
  const { api, name, deadLetterQueue } = setup;
  const channel = await inspect(t);
  // An operator deletes the dead-letter queue; the next rejection must not vanish.
  await channel.deleteQueue(deadLetterQueue);
  await parkRejected(app, setup, ['orphan-1']);
  t.same(
    (await list(api, name)).map((message) => [message.id, message.reason]),
    [['orphan-1', 'rejected']],
    'parked, not lost',
  );
});

t.test(
  'listing while the dead-letter queue is gone: an error for that call, the broker connection stays',
  async (t) => {
    const app = await startApp(t);
    const { api, name, deadLetterQueue, sidecar } = await startPush(t, app);
    const connects = () => sidecar.metrics.registry.getSingleMetric('outrigger_broker_connects_total')?.get();
    const before = JSON.stringify((await connects())?.values);
    const channel = await inspect(t);
    await channel.deleteQueue(deadLetterQueue);
    const response = await fetch(`${api}/v1/subscriptions/${name}/deadletters`);
    t.equal(response.status, 503);
    t.equal(((await response.json()) as Problem).code, 'BROKER_UNAVAILABLE');
    // The broker's 404 closes the channel of the call; it must not close the sidecar's connection, with every
    // publish and consumer on it.
    await sleep(500);
    t.equal(sidecar.broker.state, 'connected');
    t.equal(JSON.stringify((await connects())?.values), before, 'no reconnection');
  },
);

t.test('replay by id and {"all": true}: delivered again with attempt 1, gone from the dead letters', async (t) => {
  const app = await startApp(t);
  const setup = await startPush(t, app);
  const { api, name, sidecar, deadLetterQueue } = setup;
  const ids = ['r-1', 'r-2', 'r-3', 'r-4'];
  await parkRejected(app, setup, ids);
  app.handle(answer(200));

  const some = await replay(api, name, JSON.stringify({ ids: ['r-2', 'unknown-id'] }));
  t.equal(some.status, 200);
  t.same(await some.json(), { replayed: ['r-2'] }, 'only what was parked is replayed');
  await until('r-2 delivered again', () => requestsFor(app, 'r-2').length === 2);
  t.same(
    (await list(api, name)).map((message) => message.id),
    ['r-1', 'r-3', 'r-4'],
    'the others stay parked, in order',
  );

  const all = await replay(api, name, '{"all": true}');
  t.equal(all.status, 200);
  t.same(await all.json(), { replayed: ['r-1', 'r-3', 'r-4'] });
  await until('all acked', async () => (await deliveries(sidecar, name, 'acked')) === ids.length);
  for (const id of ids) {
    t.same(requestsFor(app, id).map(attemptOf), [1, 1], `${id}: rejected on attempt 1, replayed as attempt 1`);
    t.equal(requestsFor(app, id)[1]?.body.toString(), id);
  }
  t.same(await list(api, name), []);
  t.equal(await messageCount(deadLetterQueue), 0);
  t.same(await (await replay(api, name, '{"all": true}')).json(), { replayed: [] }, 'nothing left to replay');
  await sleep(500);
  t.equal(app.received.length, ids.length * 2, 'nothing delivered twice');
});

t.test('DELETE removes a parked message; a second DELETE is 404 DEAD_LETTER_UNKNOWN', async (t) => {
  const app = await startApp(t);
  const setup = await startPush(t, app);
  const { api, name, deadLetterQueue } = setup;
  const odd = 'order/7?x=1#y z';
  await parkRejected(app, setup, ['d-1', odd, 'd-3']);

  const deleted = await remove(api, name, odd);
  t.equal(deleted.status, 200);
  t.same(await deleted.json(), { deleted: 1 });
  t.same(
    (await list(api, name)).map((message) => message.id),
    ['d-1', 'd-3'],
    'the others stay, in order',
  );
  t.equal(await messageCount(deadLetterQueue), 2);

  const again = await remove(api, name, odd);
  t.equal(again.status, 404);
  t.match(again.headers.get('content-type'), /^application\/problem\+json(;|$)/);
  t.match(await again.json(), { code: 'DEAD_LETTER_UNKNOWN', status: 404 });
  const never = await remove(api, name, 'never-parked');
  t.equal(never.status, 404);
  t.equal(((await never.json()) as Problem).code, 'DEAD_LETTER_UNKNOWN');
  t.same(
    (await list(api, name)).map((message) => message.id),
    ['d-1', 'd-3'],
  );
  t.equal(app.received.length, 3, 'nothing was delivered by deleting');
});

t.test('an unknown subscription is 404 SUBSCRIPTION_UNKNOWN', async (t) => {
  const app = await startApp(t);
  const { api } = await startPush(t, app);
  const calls: [string, Promise<Response>][] = [
    ['GET', fetch(`${api}/v1/subscriptions/nope/deadletters`)],
    ['replay ids', replay(api, 'nope', '{"ids": ["x"]}')],
    ['replay all', replay(api, 'nope', '{"all": true}')],
    ['DELETE', remove(api, 'nope', 'x')],
  ];
  for (const [what, call] of calls) {
    const response = await call;
    t.equal(response.status, 404, `${what}: 404`);
    t.match(response.headers.get('content-type'), /^application\/problem\+json(;|$)/, `${what}: problem details`);
    t.match(await response.json(), { code: 'SUBSCRIPTION_UNKNOWN', detail: /nope/ }, `${what}: SUBSCRIPTION_UNKNOWN`);
  }
});

t.test('bad requests are 400 REQUEST_INVALID and change nothing', async (t) => {
  const app = await startApp(t);
  const setup = await startPush(t, app);
  const { api, name } = setup;
  await parkRejected(app, setup, ['b-1', 'b-2']);
  const before = await list(api, name);
  app.handle(answer(200));

  const bodies = [
    '{}',
    '{"ids": []}',
    '{"ids": "b-1"}',
    '{"ids": [1]}',
    '{"ids": [""]}',
    `{"ids": ["${'x'.repeat(201)}"]}`,
    '{"all": false}',
    '{"all": "true"}',
    '{"ids": ["b-1"], "all": true}',
    '{"ids": ["b-1"], "other": 1}',
    '[]',
    'null',
    '{"ids": ["b-1"]',
  ];
  for (const body of bodies) {
    const response = await replay(api, name, body);
    t.equal(response.status, 400, `replay ${body.slice(0, 40)}: 400`);
    t.equal(
      ((await response.json()) as Problem).code,
      'REQUEST_INVALID',
      `replay ${body.slice(0, 40)}: REQUEST_INVALID`,
    );
  }
  const empty = await fetch(`${api}/v1/subscriptions/${name}/deadletters/replay`, { method: 'POST', headers: asJson });
  t.equal(empty.status, 400, 'replay with no body: 400');
  t.equal(((await empty.json()) as Problem).code, 'REQUEST_INVALID');

  for (const query of ['?limit=0', '?limit=-1', '?limit=abc', '?limit=1.5', '?limit=1001']) {
    const response = await fetch(`${api}/v1/subscriptions/${name}/deadletters${query}`);
    t.equal(response.status, 400, `GET ${query}: 400`);
    t.equal(((await response.json()) as Problem).code, 'REQUEST_INVALID', `GET ${query}: REQUEST_INVALID`);
  }

  await sleep(300);
  t.same(await list(api, name), before, 'every dead letter is still parked, unchanged');
  t.equal(app.received.length, 2, 'nothing was replayed');
});
