// Push delivery against the real broker and a real HTTP app: the outcome
// table, retry spacing, the headers of a push, fan-out to groups, concurrency.
import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { answer, type Received, startApp } from './support/app-server.ts';
import { uniqueTopic } from './support/in-process.ts';
import {
  attemptOf,
  deliveries,
  idOf,
  messageCount,
  publish,
  requestsFor,
  startPush,
  uniqueAppId,
} from './support/push.ts';
import { until } from './support/wait.ts';

// Every test waits for real retries (whole seconds in the broker's delay cascade).
t.setTimeout(90_000);

/** A retry comes back after at least a second: waiting this long after the last delivery shows there is none. */
const NO_RETRY_WINDOW_MS = 1_500;

/** The gaps in ms between successive requests. */
const gaps = (requests: Received[]) =>
  requests.slice(1).map((request, index) => request.at - (requests[index]?.at ?? 0));

t.test('2xx: acked, delivered once, nothing left in the queue or the dead letters', async (t) => {
  const app = await startApp(t);
  app.handle((request, response) => void response.writeHead(Number(request.body.toString())).end());
  const { api, topic, sidecar, name, queue, deadLetterQueue } = await startPush(t, app);
  const statuses = [200, 201, 202, 204];
  for (const status of statuses) await publish(api, topic, String(status));

  await until('every message acked', async () => (await deliveries(sidecar, name, 'acked')) === statuses.length);
  await sleep(NO_RETRY_WINDOW_MS);
  t.same(
    app.received.map((request) => [request.body.toString(), attemptOf(request)]),
    statuses.map((status) => [String(status), 1]),
    'each message reached the app once, on its first attempt',
  );
  t.equal(await deliveries(sidecar, name, 'retried'), 0);
  await sidecar.stop();
  t.equal(await messageCount(queue), 0, 'the queue is empty (nothing unacked went back)');
  t.equal(await messageCount(deadLetterQueue), 0, 'nothing was dead-lettered');
});

t.test('408, 429 and 5xx: retried with outrigger-attempt counting up, about a second apart', async (t) => {
  const app = await startApp(t);
  // Fails the first two attempts with the status in the body, then takes the message.
  app.handle((request, response) => {
    const status = attemptOf(request) < 3 ? Number(request.body.toString()) : 200;
    answer(status)(request, response);
  });
  const { api, topic, sidecar, name, queue, deadLetterQueue } = await startPush(t, app);
  const statuses = [408, 429, 500, 502, 503, 504];
  const ids = new Map<number, string>();
  for (const status of statuses) ids.set(status, (await publish(api, topic, String(status))).id);

  await until('every message acked', async () => (await deliveries(sidecar, name, 'acked')) === statuses.length, {
    timeoutMs: 15_000,
  });
  await sleep(NO_RETRY_WINDOW_MS);
  for (const status of statuses) {
    const requests = requestsFor(app, ids.get(status) ?? '');
    t.same(requests.map(attemptOf), [1, 2, 3], `${status}: attempts 1, 2, 3, then acked`);
    for (const gap of gaps(requests)) t.ok(gap >= 1_000, `${status}: ${gap} ms between attempts, at least 1 s`);
    t.ok(
      requests.every((request) => request.body.toString() === String(status)),
      `${status}: the same body every time`,
    );
  }
  t.equal(await deliveries(sidecar, name, 'retried'), statuses.length * 2);
  await sidecar.stop();
  t.equal(await messageCount(queue), 0);
  t.equal(await messageCount(deadLetterQueue), 0, 'nothing was dead-lettered');
});

t.test('a timeout is retried: an app that does not answer within the timeout gets the message again', async (t) => {
  const app = await startApp(t);
  const held: ServerResponse[] = [];
  app.handle((request, response) => {
    if (attemptOf(request) < 3) held.push(response);
    else answer(200)(request, response);
  });
  t.teardown(() => {
    for (const response of held) response.destroy();
  });
  const { api, topic, sidecar, name, queue, deadLetterQueue } = await startPush(t, app, {
    subscription: { timeout: '300ms' },
  });
  const { id } = await publish(api, topic, 'slow');
  await until('acked on the third attempt', async () => (await deliveries(sidecar, name, 'acked')) === 1, {
    timeoutMs: 10_000,
  });
  const requests = requestsFor(app, id);
  t.same(requests.map(attemptOf), [1, 2, 3]);
  for (const gap of gaps(requests)) t.ok(gap >= 1_300, `${gap} ms between attempts: the 300 ms timeout, then 1 s`);
  t.ok(
    held.every((response) => response.destroyed || response.socket === null),
    'the sidecar dropped the requests it gave up on',
  );
  await sidecar.stop();
  t.equal(await messageCount(queue), 0);
  t.equal(await messageCount(deadLetterQueue), 0);
});

// docs/api.md departs from the contract here: a refused connection means the app is not there
// (restarting), so the message goes back without an attempt and delivery pauses until its health check passes.
t.test('connection refused: handed back without an attempt, delivered once the app is back', async (t) => {
  const app = await startApp(t);
  const { api, topic, sidecar, name } = await startPush(t, app);
  await app.stop();
  const { id } = await publish(api, topic, 'while the app is down');
  await until('the refused delivery handed back', async () => (await deliveries(sidecar, name, 'released')) >= 1);
  await until('delivery paused', () => sidecar.subscriptions.get(name)?.consumer.state === 'paused');
  await sleep(1_500);
  const released = await deliveries(sidecar, name, 'released');
  t.ok(released <= 3, `no busy loop against the closed port: handed back ${released} times`);
  t.equal(app.received.length, 0);
  await app.start();
  await until('delivered once the app is back', () => requestsFor(app, id).length > 0, { timeoutMs: 5_000 });
  await until('acked', async () => (await deliveries(sidecar, name, 'acked')) === 1);
  t.same(requestsFor(app, id).map(attemptOf), [1], 'no attempt counted for the refused connection');
  t.equal(await deliveries(sidecar, name, 'retried'), 0);
  t.equal(await deliveries(sidecar, name, 'dead_lettered'), 0);
});

t.test('connection reset: the app dropping the connection is retried', async (t) => {
  const app = await startApp(t);
  app.handle((request, response) => {
    if (attemptOf(request) === 1) response.socket?.destroy();
    else answer(200)(request, response);
  });
  const { api, topic, sidecar, name, queue, deadLetterQueue } = await startPush(t, app);
  const { id } = await publish(api, topic, 'reset me');
  await until('acked', async () => (await deliveries(sidecar, name, 'acked')) === 1);
  const requests = requestsFor(app, id);
  t.same(requests.map(attemptOf), [1, 2]);
  t.ok((gaps(requests)[0] ?? 0) >= 1_000);
  await sidecar.stop();
  t.equal(await messageCount(queue), 0);
  t.equal(await messageCount(deadLetterQueue), 0);
});

t.test('any other 4xx: dead-lettered at once, never retried', async (t) => {
  const app = await startApp(t);
  app.handle((request, response) => answer(Number(request.body.toString()))(request, response));
  const { api, topic, sidecar, name, queue, deadLetterQueue } = await startPush(t, app);
  const statuses = [400, 401, 403, 404, 409, 410, 413, 422];
  for (const status of statuses) await publish(api, topic, String(status), { 'idempotency-key': `rejected-${status}` });
  await until(
    'every message dead-lettered',
    async () => (await deliveries(sidecar, name, 'dead_lettered')) === statuses.length,
  );
  await sleep(NO_RETRY_WINDOW_MS);
  t.same(
    app.received.map((request) => [request.body.toString(), attemptOf(request)]),
    statuses.map((status) => [String(status), 1]),
    'each message reached the app exactly once',
  );
  t.equal(await deliveries(sidecar, name, 'retried'), 0, 'no retry');

  const listed = await fetch(`${api}/v1/subscriptions/${name}/deadletters`);
  t.equal(listed.status, 200);
  const { messages } = (await listed.json()) as { messages: Record<string, unknown>[] };
  t.same(
    messages.map(({ id, reason, lastStatus, attempts }) => ({ id, reason, lastStatus, attempts })),
    statuses.map((status) => ({ id: `rejected-${status}`, reason: 'rejected', lastStatus: status, attempts: 1 })),
  );
  t.match(messages[0], { lastError: 'the app answered 400: status 400' });
  await sidecar.stop();
  t.equal(await messageCount(queue), 0);
  t.equal(await messageCount(deadLetterQueue), statuses.length);
});

t.test('retries follow the back-off: initial, then times the multiplier', async (t) => {
  const app = await startApp(t);
  app.handle(answer(500));
  const { api, topic, sidecar, name } = await startPush(t, app, {
    subscription: { retry: { maxAttempts: 3, initial: '1s', multiplier: 2, jitter: 0 } },
  });
  const { id } = await publish(api, topic, 'back off');
  await until('dead-lettered', async () => (await deliveries(sidecar, name, 'dead_lettered')) === 1, {
    timeoutMs: 10_000,
  });
  const requests = requestsFor(app, id);
  t.same(requests.map(attemptOf), [1, 2, 3]);
  const [first = 0, second = 0] = gaps(requests);
  t.ok(first >= 1_000 && first < 1_900, `${first} ms before attempt 2: 1 s`);
  t.ok(second >= 2_000 && second < 2_900, `${second} ms before attempt 3: 2 s`);
});

t.test("the app's retry-after is honoured when longer than the back-off", async (t) => {
  const app = await startApp(t);
  app.handle((request, response) => {
    if (attemptOf(request) > 1) return answer(200)(request, response);
    const [status, retryAfter] = request.body.toString().split(' ');
    answer(Number(status), { 'retry-after': retryAfter ?? '' })(request, response);
  });
  const { api, topic, sidecar, name } = await startPush(t, app);
  const unavailable = await publish(api, topic, '503 2');
  const tooMany = await publish(api, topic, '429 3');
  await until('both acked', async () => (await deliveries(sidecar, name, 'acked')) === 2, { timeoutMs: 10_000 });
  const [afterUnavailable = 0] = gaps(requestsFor(app, unavailable.id));
  const [afterTooMany = 0] = gaps(requestsFor(app, tooMany.id));
  t.ok(afterUnavailable >= 2_000, `503 with retry-after: 2 -> next attempt ${afterUnavailable} ms later`);
  t.ok(afterTooMany >= 3_000, `429 with retry-after: 3 -> next attempt ${afterTooMany} ms later`);
  t.same(requestsFor(app, tooMany.id).map(attemptOf), [1, 2]);
});

t.test('the headers of a push, per the contract; body bytes unchanged, on every attempt', async (t) => {
  const app = await startApp(t);
  // The first attempt of every message fails, so the retry's headers are checked too.
  app.handle((request, response) => answer(attemptOf(request) === 1 ? 500 : 200)(request, response));
  const { api, topic, sidecar, name } = await startPush(t, app, { name: 'readings' });
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, index) => index));
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const given = await publish(api, topic, bytes, {
    'content-type': 'application/vnd.example+json; charset=utf-8',
    'idempotency-key': 'reading-42',
    'ce-type': 'com.example.reading',
    'ce-source': '/sensors/7',
    'ce-time': '2024-05-01T12:00:00Z',
    'ce-subject': 'room-3',
    traceparent,
    tracestate: 'vendor=abc',
  });
  const before = Date.now();
  const bare = await publish(api, topic, Buffer.from('plain'));
  await until('both acked', async () => (await deliveries(sidecar, name, 'acked')) === 2);

  const givenRequests = requestsFor(app, 'reading-42');
  t.equal(given.id, 'reading-42');
  t.same(givenRequests.map(attemptOf), [1, 2]);
  for (const request of givenRequests) {
    const attempt = attemptOf(request);
    t.equal(request.path, '/events', 'POSTed to the route');
    t.same([...request.body], [...bytes], `attempt ${attempt}: body bytes identical`);
    t.match(
      request.headers,
      {
        'content-type': 'application/vnd.example+json; charset=utf-8',
        'ce-specversion': '1.0',
        'ce-id': 'reading-42',
        'ce-type': 'com.example.reading',
        'ce-source': '/sensors/7',
        'ce-time': '2024-05-01T12:00:00Z',
        'ce-subject': 'room-3',
        traceparent,
        tracestate: 'vendor=abc',
        'outrigger-topic': topic,
        'outrigger-subscription': 'readings',
        'outrigger-attempt': String(attempt),
      },
      `attempt ${attempt}: headers`,
    );
    const own = Object.keys(request.headers).filter((header) => header.startsWith('outrigger-'));
    t.same(own.sort(), ['outrigger-attempt', 'outrigger-subscription', 'outrigger-topic'], 'no internal headers leak');
    t.notOk(
      Object.keys(request.headers).some((header) => header.startsWith('x-')),
      'no broker headers leak',
    );
  }

  const bareRequests = requestsFor(app, bare.id);
  t.same(bareRequests.map(attemptOf), [1, 2]);
  const [first, second] = bareRequests;
  t.match(first?.headers, {
    'content-type': 'application/octet-stream',
    'ce-specversion': '1.0',
    'ce-id': bare.id,
    'ce-type': topic,
    'ce-source': `/outrigger/topics/${topic}`,
  });
  t.notOk(first?.headers.traceparent, 'no traceparent when the publisher had none');
  const ceTime = Date.parse(String(first?.headers['ce-time']));
  t.ok(Math.abs(ceTime - before) < 5_000, `default ce-time ${first?.headers['ce-time']} is the publish time`);
  t.equal(second?.headers['ce-time'], first?.headers['ce-time'], 'ce-time stays the same on a retry');
  t.equal(second?.body.toString(), 'plain');
});

t.test('values no header can carry are percent-encoded, a content-type that cannot be sent falls back', async (t) => {
  const app = await startApp(t);
  const { api, topic, sidecar, name } = await startPush(t, app);
  // A batch entry's id and content-type are any JSON strings; another producer's AMQP properties can be anything too.
  const response = await fetch(`${api}/v1/publish/${topic}/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([
      {
        data: 'odd',
        id: 'order-\u20ac-\n1',
        contentType: 'text/plain\r\nx-injected: 1',
        headers: { 'ce-subject': 'room \u2603' },
      },
    ]),
  });
  t.equal(response.status, 202);
  await until('acked', async () => (await deliveries(sidecar, name, 'acked')) === 1);
  t.equal(await deliveries(sidecar, name, 'retried'), 0, 'delivered on the first attempt');
  const [request] = app.received;
  t.match(request?.headers, {
    'ce-id': 'order-%E2%82%AC-%0A1',
    'content-type': 'application/octet-stream',
    'ce-subject': 'room %E2%98%83',
    'outrigger-attempt': '1',
  });
  t.notOk(request?.headers['x-injected'], 'nothing injected');
  t.equal(request?.body.toString(), '"odd"');
});

t.test('published while the app is not running: the message waits and arrives once it starts', async (t) => {
  const app = await startApp(t, { listening: false });
  const { api, topic, sidecar, name } = await startPush(t, app, { waitForConsuming: false });
  await until(
    'the subscription paused for the app',
    () => sidecar.subscriptions.get(name)?.consumer.state === 'paused',
  );
  const published = await publish(api, topic, 'early');
  t.equal(published.routed, true, "the subscription's queue exists before the app runs");
  await sleep(1_000);
  await app.start();
  await until('delivered after the app started', () => app.received.length > 0, { timeoutMs: 5_000 });
  await until('acked', async () => (await deliveries(sidecar, name, 'acked')) === 1);
  await sleep(NO_RETRY_WINDOW_MS);
  t.same(
    app.received.map((request) => [idOf(request), attemptOf(request), request.body.toString()]),
    [[published.id, 1, 'early']],
    'delivered once, first attempt',
  );
});

t.test('two groups on one topic each get every message; a retry of one never reaches the other', async (t) => {
  const topic = uniqueTopic('groups');
  const appA = await startApp(t);
  const appB = await startApp(t);
  appA.handle((request, response) => answer(attemptOf(request) === 1 ? 503 : 200)(request, response));
  const a = await startPush(t, appA, { topic, appId: uniqueAppId('group-a') });
  const b = await startPush(t, appB, { topic, appId: uniqueAppId('group-b') });
  const ids = ['m-1', 'm-2', 'm-3'];
  for (const id of ids) await publish(a.api, topic, id, { 'idempotency-key': id });

  await until('group A took every message on its second attempt', async () => {
    return (await deliveries(a.sidecar, a.name, 'acked')) === ids.length;
  });
  await until('group B took every message', async () => (await deliveries(b.sidecar, b.name, 'acked')) === ids.length);
  await sleep(NO_RETRY_WINDOW_MS);
  for (const id of ids) {
    t.same(requestsFor(appA, id).map(attemptOf), [1, 2], `${id}: group A, attempts 1 and 2`);
    t.same(requestsFor(appB, id).map(attemptOf), [1], `${id}: group B, once, never A's retry`);
  }
  t.equal(appB.received.length, ids.length);
});

t.test('concurrency 4 with a slow app: never more than 4 pushes in flight', async (t) => {
  const app = await startApp(t);
  let inFlight = 0;
  let most = 0;
  app.handle((_request, response) => {
    inFlight++;
    most = Math.max(most, inFlight);
    setTimeout(() => {
      inFlight--;
      response.writeHead(200).end();
    }, 250);
  });
  const { api, topic, sidecar, name } = await startPush(t, app, { subscription: { concurrency: 4 } });
  const count = 16;
  await Promise.all(Array.from({ length: count }, (_, index) => publish(api, topic, String(index))));
  await until('every message acked', async () => (await deliveries(sidecar, name, 'acked')) === count);
  t.equal(most, 4, `at most 4 in flight (and the 4 were used): saw ${most}`);
  t.equal(app.received.length, count, 'each delivered once');
  t.same(new Set(app.received.map((request) => request.body.toString())).size, count);
});

t.test('deadLetter: false drops the message after its last attempt', async (t) => {
  const app = await startApp(t);
  app.handle(answer(500));
  const { api, topic, sidecar, name, queue, deadLetterQueue } = await startPush(t, app, {
    subscription: { deadLetter: false, retry: { maxAttempts: 2, initial: '1s', multiplier: 1, jitter: 0 } },
  });
  const { id } = await publish(api, topic, 'doomed');
  await until('dropped', async () => (await deliveries(sidecar, name, 'dropped')) === 1, { timeoutMs: 8_000 });
  await sleep(NO_RETRY_WINDOW_MS);
  t.same(requestsFor(app, id).map(attemptOf), [1, 2], 'two attempts, no more');
  t.equal(await deliveries(sidecar, name, 'dead_lettered'), 0);
  await sidecar.stop();
  t.equal(await messageCount(queue), 0, 'not in the queue');
  t.equal(await messageCount(deadLetterQueue), 0, 'not in the dead letters');
});
