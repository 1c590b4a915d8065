// POST /v1/publish against the real broker: what arrives, what does not.
import t from 'tap';
import { drain, inspect, queueOn, startInProcess, uniqueTopic } from './support/in-process.ts';
import { until } from './support/wait.ts';

/** The JSON answers this suite reads. */
interface Answer {
  id: string;
  topic: string;
  duplicate: boolean;
  routed: boolean;
  code: string;
  results: Answer[];
}
const json = async (response: Response) => (await response.json()) as Answer;

const post = (url: string, body: string | Buffer, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', body, headers });

t.test('a published message arrives durable, with its id, content-type and CloudEvents attributes', async (t) => {
  const { api } = await startInProcess(t, { appId: 'publisher' });
  const channel = await inspect(t);
  const topic = uniqueTopic('basic');
  const queue = await queueOn(t, channel, topic);

  const response = await post(`${api}/v1/publish/${topic}`, '{"celsius": 21.5}', {
    'content-type': 'application/json',
    'ce-id': 'reading-1',
    'ce-type': 'sensor.reading',
    'ce-source': '/sensors/1',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    'x-not-kept': 'dropped',
  });
  t.equal(response.status, 202);
  t.same(await json(response), { id: 'reading-1', topic, duplicate: false, routed: true });

  const [message, ...rest] = await drain(channel, queue);
  t.equal(rest.length, 0, 'exactly one message');
  t.equal(message?.content.toString(), '{"celsius": 21.5}');
  t.match(message?.properties, {
    messageId: 'reading-1',
    contentType: 'application/json',
    deliveryMode: 2,
    appId: 'publisher',
    headers: {
      'ce-type': 'sensor.reading',
      'ce-source': '/sensors/1',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    },
  });
  t.notOk(message?.properties.headers?.['x-not-kept'], 'arbitrary headers are not forwarded');
  t.type(message?.properties.timestamp, 'number');
});

t.test('bytes stay bytes; an empty body is a message too', async (t) => {
  const { api } = await startInProcess(t, { appId: 'publisher' });
  const channel = await inspect(t);
  const topic = uniqueTopic('bytes');
  const queue = await queueOn(t, channel, topic);
  const bytes = Buffer.from([0, 1, 2, 254, 255]);
  t.equal(
    (await post(`${api}/v1/publish/${topic}`, bytes, { 'content-type': 'application/octet-stream' })).status,
    202,
  );
  t.equal((await fetch(`${api}/v1/publish/${topic}`, { method: 'POST' })).status, 202);
  const [first, second] = await drain(channel, queue);
  t.same([...(first?.content ?? [])], [...bytes]);
  t.equal(first?.properties.contentType, 'application/octet-stream');
  t.equal(second?.content.length, 0);
});

t.test('a message no queue wants is confirmed and reported routed: false', async (t) => {
  const { api } = await startInProcess(t, { appId: 'publisher' });
  const response = await post(`${api}/v1/publish/${uniqueTopic('nobody')}`, 'x');
  t.equal(response.status, 202);
  t.match(await json(response), { routed: false, duplicate: false });
});

t.test('the same idempotency-key within the window is sent once', async (t) => {
  const { api } = await startInProcess(t, { appId: 'publisher' });
  const channel = await inspect(t);
  const topic = uniqueTopic('dedupe');
  const queue = await queueOn(t, channel, topic);
  const first = await json(await post(`${api}/v1/publish/${topic}`, 'a', { 'idempotency-key': 'order-7' }));
  const again = await Promise.all(
    [1, 2, 3].map(async () => json(await post(`${api}/v1/publish/${topic}`, 'a', { 'idempotency-key': 'order-7' }))),
  );
  t.same(first, { id: 'order-7', topic, duplicate: false, routed: true });
  for (const answer of again) t.same(answer, { id: 'order-7', topic, duplicate: true, routed: true });
  const viaCeId = await json(await post(`${api}/v1/publish/${topic}`, 'b', { 'ce-id': 'order-7' }));
  t.equal(viaCeId.duplicate, true, 'ce-id acts as the key when there is no idempotency-key');
  const other = await json(await post(`${api}/v1/publish/${topic}`, 'c', { 'idempotency-key': 'order-8' }));
  t.equal(other.duplicate, false);
  const messages = await drain(channel, queue);
  t.same(
    messages.map((message) => message.properties.messageId),
    ['order-7', 'order-8'],
  );
});

t.test('a batch is published in order, one result per entry', async (t) => {
  const { api } = await startInProcess(t, { appId: 'publisher' });
  const channel = await inspect(t);
  const topic = uniqueTopic('batch');
  const queue = await queueOn(t, channel, topic);
  const response = await post(
    `${api}/v1/publish/${topic}/batch`,
    JSON.stringify([
      { data: { n: 1 }, id: 'b-1' },
      { data: { base64: Buffer.from('raw').toString('base64') }, id: 'b-2', contentType: 'text/plain' },
      { data: 'three', id: 'b-3', headers: { 'ce-type': 'x.y', other: 'dropped' } },
    ]),
    { 'content-type': 'application/json' },
  );
  t.equal(response.status, 202);
  const { results } = await json(response);
  t.same(
    results.map((result) => [result.id, result.routed]),
    [
      ['b-1', true],
      ['b-2', true],
      ['b-3', true],
    ],
  );
  const messages = await drain(channel, queue);
  t.same(
    messages.map((message) => [
      message.properties.messageId,
      message.content.toString(),
      message.properties.contentType,
    ]),
    [
      ['b-1', '{"n":1}', 'application/json'],
      ['b-2', 'raw', 'text/plain'],
      ['b-3', '"three"', 'application/json'],
    ],
  );
  const { 'outrigger-publish-tag': tag, ...headers } = messages[2]?.properties.headers ?? {};
  t.same(
    headers,
    { 'ce-type': 'x.y', 'outrigger-topic': topic },
    'only the kept headers travel, and the topic for consumers reached through the delay cascade',
  );
  t.type(tag, 'number', 'and the tag that matches a return to its publish');
});

t.test('bad input gets its code and publishes nothing', async (t) => {
  const { api } = await startInProcess(t, { appId: 'publisher', http: { bodyLimit: 1024 } });
  const channel = await inspect(t);
  const topic = uniqueTopic('bad');
  const queue = await queueOn(t, channel, topic);
  const asJson = { 'content-type': 'application/json' };
  const cases: [string, string | Buffer, Record<string, string>, number, string][] = [
    [`/v1/publish/-leading-dash`, 'x', {}, 400, 'TOPIC_INVALID'],
    [`/v1/publish/${'t'.repeat(201)}`, 'x', {}, 400, 'TOPIC_INVALID'],
    [`/v1/publish/amq.direct`, 'x', {}, 400, 'TOPIC_INVALID'],
    [`/v1/publish/outrigger.delay.1`, 'x', {}, 400, 'TOPIC_INVALID'],
    [`/v1/publish/${topic}?delay=soon`, 'x', {}, 400, 'DELAY_INVALID'],
    [`/v1/publish/${topic}?delay=-5s`, 'x', {}, 400, 'DELAY_INVALID'],
    [`/v1/publish/${topic}?deliverAt=tomorrow`, 'x', {}, 400, 'DELAY_INVALID'],
    [`/v1/publish/${topic}?delay=1s&deliverAt=2030-01-01T00:00:00Z`, 'x', {}, 400, 'DELAY_INVALID'],
    [`/v1/publish/${topic}`, Buffer.alloc(2048), {}, 413, 'BODY_TOO_LARGE'],
    [`/v1/publish/${topic}`, 'x', { 'idempotency-key': 'k'.repeat(201) }, 400, 'REQUEST_INVALID'],
    // AMQP carries the id and content type in 255 bytes at most: 200 characters of é are 400.
    [`/v1/publish/${topic}`, 'x', { 'idempotency-key': 'é'.repeat(200) }, 400, 'REQUEST_INVALID'],
    [`/v1/publish/${topic}`, 'x', { 'content-type': `text/${'x'.repeat(300)}` }, 400, 'REQUEST_INVALID'],
    [
      `/v1/publish/${topic}/batch`,
      `[{"data": 1, "contentType": "${'é'.repeat(200)}"}]`,
      asJson,
      400,
      'REQUEST_INVALID',
    ],
    [`/v1/publish/${topic}/batch`, '[]', asJson, 400, 'REQUEST_INVALID'],
    [`/v1/publish/${topic}/batch`, '{"data": 1}', asJson, 400, 'REQUEST_INVALID'],
    [`/v1/publish/${topic}/batch`, '[{"data": 1}, {"nodata": 2}]', asJson, 400, 'REQUEST_INVALID'],
    [`/v1/publish/${topic}/batch`, '[{"data": 1}, {"data": 2, "delay": "x"}]', asJson, 400, 'DELAY_INVALID'],
    [`/v1/publish/${topic}/batch`, '[{"data": 1', asJson, 400, 'REQUEST_INVALID'],
    [`/v1/publish/${topic}/batch`, '[{"data": 1}]', { 'content-type': 'text/plain' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ];
  for (const [path, body, headers, status, code] of cases) {
    const response = await post(`${api}${path}`, body, headers);
    t.equal(response.status, status, `${path.slice(0, 60)} -> ${status}`);
    t.equal((await json(response)).code, code, `${path.slice(0, 60)} -> ${code}`);
  }
  t.same(await drain(channel, queue), [], 'nothing was published');

  const badEntry = await post(`${api}/v1/publish/${topic}/batch`, '[{"data": 1}, {"data": 2, "x": 3}]', asJson);
  t.match(
    (await json(badEntry)) as unknown,
    { code: 'REQUEST_INVALID', detail: /^body\[1\]: / },
    'the detail names the entry',
  );

  // The limit is AMQP's 255 bytes, for a batch entry as for a single publish.
  const long = `text/${'x'.repeat(240)}`;
  t.equal((await post(`${api}/v1/publish/${topic}`, 'x', { 'content-type': long })).status, 202, 'single: 245 bytes');
  const batch = await post(`${api}/v1/publish/${topic}/batch`, `[{"data": 1, "contentType": "${long}"}]`, asJson);
  t.equal(batch.status, 202, 'batch entry: 245 bytes');
  const arrived: Awaited<ReturnType<typeof drain>> = [];
  await until('the two messages', async () => {
    arrived.push(...(await drain(channel, queue)));
    return arrived.length === 2;
  });
  t.same(
    arrived.map((message) => message.properties.contentType),
    [long, long],
  );
});

t.test('with the broker away, 503 BROKER_UNAVAILABLE with retry-after', async (t) => {
  const { api } = await startInProcess(
    t,
    { appId: 'publisher', broker: { url: 'amqp://guest:guest@127.0.0.1:1', reconnect: { initial: '1s', max: '1s' } } },
    { waitForBroker: false },
  );
  const response = await post(`${api}/v1/publish/${uniqueTopic('away')}`, 'x', { 'idempotency-key': 'k1' });
  t.equal(response.status, 503);
  t.equal(response.headers.get('retry-after'), '1');
  t.equal((await json(response)).code, 'BROKER_UNAVAILABLE');
  const again = await post(`${api}/v1/publish/${uniqueTopic('away')}`, 'x', { 'idempotency-key': 'k1' });
  t.equal(again.status, 503, 'a failed publish is not remembered as done');
});

t.test('a delayed message waits in the broker and is never early', async (t) => {
  const { api } = await startInProcess(t, { appId: 'publisher' });
  const channel = await inspect(t);
  const topic = uniqueTopic('delayed');
  const queue = await queueOn(t, channel, topic);
  const sent = Date.now();
  const response = await post(`${api}/v1/publish/${topic}?delay=2s`, 'later', { 'idempotency-key': 'reminder-1' });
  t.equal(response.status, 202);
  const answer = (await response.json()) as Answer & { deliverAt: string };
  t.equal(answer.routed, true);
  t.ok(Math.abs(Date.parse(answer.deliverAt) - (sent + 2_000)) < 500, `deliverAt ${answer.deliverAt} is 2 s out`);
  t.same(await drain(channel, queue), [], 'not there yet');
  const arrived = await until('the delayed message', async () => (await drain(channel, queue))[0], {
    timeoutMs: 8_000,
  });
  const waited = Date.now() - sent;
  t.ok(waited >= 2_000, `not early: arrived after ${waited} ms`);
  t.ok(waited <= 3_500, `at most ~1.5 s late: arrived after ${waited} ms`);
  t.equal(arrived.content.toString(), 'later');
  t.equal(arrived.properties.messageId, 'reminder-1');

  const at = new Date(Date.now() + 1_000).toISOString();
  const byTime = await post(`${api}/v1/publish/${topic}?deliverAt=${at}`, 'at a time');
  t.equal(byTime.status, 202);
  const second = await until('the message for a time', async () => (await drain(channel, queue))[0], {
    timeoutMs: 8_000,
  });
  t.ok(Date.now() >= Date.parse(at), 'not before deliverAt');
  t.equal(second.content.toString(), 'at a time');

  const tooFar = await post(`${api}/v1/publish/${topic}?delay=4000d`, 'x');
  t.equal(tooFar.status, 400);
  t.equal((await json(tooFar)).code, 'DELAY_INVALID');
});
