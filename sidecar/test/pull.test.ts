// Pull delivery against the real broker: pull, ack and nack, leases, retries
// through the delay cascade, dead letters, competing consumers, and errors.
import { createServer } from 'node:net';
import { connect } from 'amqplib';
import t, { type Test } from 'tap';
import type { SubscriptionInput } from '../src/config/subscription.ts';
import type { Sidecar } from '../src/sidecar.ts';
import { BROKER_URL, deleteQueuesAtEnd, startInProcess, uniqueTopic } from './support/in-process.ts';
import { messageCount } from './support/push.ts';
import { until } from './support/wait.ts';

interface Pulled {
  ackId: string;
  id: string;
  topic: string;
  contentType?: string;
  data?: unknown;
  dataBase64?: string;
  headers: Record<string, string>;
  attempt: number;
  publishedAt?: string;
}

interface DeadLetter {
  id: string;
  reason: string;
  attempts: number;
  lastError?: string;
  data?: unknown;
}

/** The JSON answers this suite reads. */
interface Answer {
  messages: Pulled[];
  acked: string[];
  nacked: string[];
  unknown: string[];
  code: string;
  status: number;
  title: string;
  type: string;
  detail: string;
  routed: boolean;
}

const post = async (url: string, body?: unknown) => {
  const response = await fetch(url, {
    method: 'POST',
    ...(body === undefined
      ? {}
      : {
          body: typeof body === 'string' ? body : JSON.stringify(body),
          headers: { 'content-type': 'application/json' },
        }),
  });
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    body: (await response.json()) as Answer,
  };
};

// About 40 s: leases, back-offs and the 10 s hand-back of unpulled messages run in real time.
t.setTimeout(90_000);

const RETRY = { maxAttempts: 3, initial: '1s', multiplier: 1, jitter: 0 } as const;

interface PullSetup {
  api: string;
  sidecar: Sidecar;
  name: string;
  topic: string;
  group: string;
  /** POST /v1/subscriptions/{name}/{verb} */
  call: (verb: 'pull' | 'ack' | 'nack', body?: unknown) => ReturnType<typeof post>;
  /** Publishes through the sidecar; asserts the message reached a queue. */
  publish: (body: string | Buffer, headers?: Record<string, string>) => Promise<string>;
  deadLetters: () => Promise<DeadLetter[]>;
}

let groups = 0;
/** A group name no other test uses. */
const uniqueGroup = (name: string) => `pull-${name}-${process.pid}-${Date.now()}-${groups++}`;

/** Deletes `<group>:<topic>` and its dead-letter queue once the test (and its sidecars) are done. */
/** A sidecar with one pull subscription, consuming. */
async function startPull(
  t: Test,
  {
    appId = 'puller',
    group,
    topic,
    retry = RETRY,
    extra = {},
  }: {
    appId?: string;
    group: string;
    topic: string;
    retry?: SubscriptionInput['retry'];
    extra?: Partial<SubscriptionInput>;
  },
): Promise<PullSetup> {
  const name = 'jobs';
  const { api, sidecar } = await startInProcess(t, {
    appId,
    subscriptions: [{ name, topic, group, mode: 'pull', retry, ...extra }],
  });
  await until(
    'the pull subscription to consume',
    () => sidecar.subscriptions.get(name)?.consumer.state === 'consuming',
  );
  const call = (verb: 'pull' | 'ack' | 'nack', body?: unknown) => post(`${api}/v1/subscriptions/${name}/${verb}`, body);
  return {
    api,
    sidecar,
    name,
    topic,
    group,
    call,
    publish: async (body, headers = {}) => {
      const response = await fetch(`${api}/v1/publish/${topic}`, { method: 'POST', body, headers });
      const answer = (await response.json()) as Answer & { id: string };
      if (response.status !== 202 || !answer.routed) throw new Error(`publish failed: ${JSON.stringify(answer)}`);
      return answer.id;
    },
    deadLetters: async () => {
      const response = await fetch(`${api}/v1/subscriptions/${name}/deadletters`);
      return ((await response.json()) as { messages: DeadLetter[] }).messages;
    },
  };
}

/** A fresh sidecar on fresh queues. */
async function fresh(t: Test, label: string, options: Omit<Parameters<typeof startPull>[1], 'group' | 'topic'> = {}) {
  const group = uniqueGroup(label);
  const topic = uniqueTopic(`pull.${label}`);
  deleteQueuesAtEnd(t, `${group}:${topic}`);
  return startPull(t, { ...options, group, topic });
}

/** Pulls (long-polling up to `wait`) and asserts exactly one message came. */
async function pullOne(t: Test, setup: PullSetup, body: Record<string, unknown> = {}): Promise<Pulled> {
  const { status, body: answer } = await setup.call('pull', { max: 10, wait: '5s', ...body });
  t.equal(status, 200, 'pull answers 200');
  t.equal(answer.messages?.length, 1, 'one message');
  const [message] = answer.messages ?? [];
  if (message === undefined) throw new Error(`no message: ${JSON.stringify(answer)}`);
  return message;
}

t.test('a published message is pulled with its id, topic, content type, data, headers, attempt 1', async (t) => {
  const setup = await fresh(t, 'basic');
  const before = Date.now();
  await setup.publish('{"celsius": 21.5}', {
    'content-type': 'application/json',
    'ce-id': 'reading-1',
    'ce-type': 'sensor.reading',
    'ce-source': '/sensors/1',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  });
  await setup.publish('hello', { 'content-type': 'text/plain; charset=utf-8', 'idempotency-key': 'text-1' });
  await setup.publish(Buffer.from([0, 1, 2, 254, 255]), {
    'content-type': 'application/octet-stream',
    'idempotency-key': 'bytes-1',
  });

  const received: Pulled[] = [];
  await until('three messages', async () => {
    const { body } = await setup.call('pull', { max: 10, wait: '1s' });
    received.push(...body.messages);
    return received.length >= 3;
  });
  t.equal(received.length, 3, 'each message once');
  const [json, text, bytes] = received;
  t.match(json, {
    id: 'reading-1',
    topic: setup.topic,
    contentType: 'application/json',
    data: { celsius: 21.5 },
    headers: {
      'ce-type': 'sensor.reading',
      'ce-source': '/sensors/1',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    },
    attempt: 1,
  });
  t.type(json?.ackId, 'string');
  t.notOk(json && 'dataBase64' in json, 'JSON comes as data, not base64');
  t.notOk(
    Object.keys(json?.headers ?? {}).some((key) => key.startsWith('outrigger-') || key.startsWith('x-')),
    'no internal headers',
  );
  const publishedAt = Date.parse(json?.publishedAt ?? '');
  t.ok(publishedAt >= Math.floor(before / 1000) * 1000 && publishedAt <= Date.now(), 'publishedAt is the publish time');
  t.match(text, { id: 'text-1', contentType: 'text/plain; charset=utf-8', data: 'hello', attempt: 1 });
  t.match(bytes, { id: 'bytes-1', contentType: 'application/octet-stream', dataBase64: 'AAEC/v8=', attempt: 1 });
  t.notOk(bytes && 'data' in bytes, 'bytes come as dataBase64 only');
  t.equal(new Set(received.map((message) => message.ackId)).size, 3, 'one ackId each');

  const { body } = await setup.call('ack', { ackIds: received.map((message) => message.ackId) });
  t.same(body, { acked: received.map((message) => message.ackId), unknown: [] });
});

t.test('long-poll: a waiting pull returns when a message arrives; empty after wait; max limits', async (t) => {
  const setup = await fresh(t, 'longpoll');

  const started = Date.now();
  const waiting = setup.call('pull', { wait: '3s' });
  await new Promise((resolve) => setTimeout(resolve, 300));
  await setup.publish('now', { 'content-type': 'text/plain' });
  const { status, body } = await waiting;
  const elapsed = Date.now() - started;
  t.equal(status, 200);
  t.equal(body.messages.length, 1);
  t.equal(body.messages[0]?.data, 'now');
  t.ok(elapsed < 2_000, `answered as the message arrived (${elapsed} ms), well before the 3 s wait`);
  await setup.call('ack', { ackIds: body.messages.map((message) => message.ackId) });

  const emptyStart = Date.now();
  const empty = await setup.call('pull', { wait: '1s' });
  const waited = Date.now() - emptyStart;
  t.same(empty, { status: 200, type: 'application/json; charset=utf-8', body: { messages: [] } });
  t.ok(waited >= 1_000 && waited < 2_000, `empty after the wait (${waited} ms)`);

  const noWait = Date.now();
  t.same((await setup.call('pull', { wait: '0s' })).body, { messages: [] }, 'wait 0s answers at once');
  t.ok(Date.now() - noWait < 500);
  t.same((await setup.call('pull')).body, { messages: [] }, 'no body at all: the defaults (no wait)');

  for (let i = 0; i < 5; i++) await setup.publish(`m${i}`, { 'content-type': 'text/plain' });
  await until('five buffered', async () => {
    const { queue } = setup.sidecar.subscriptions.get(setup.name) ?? {};
    return queue !== undefined && (await messageCount(queue.queue)) === 0;
  });
  const first = await setup.call('pull', { max: 2, wait: '2s' });
  t.equal(first.body.messages.length, 2, 'max 2: two messages');
  const rest: Pulled[] = [];
  await until('the other three', async () => {
    rest.push(...(await setup.call('pull', { max: 10, wait: '1s' })).body.messages);
    return rest.length >= 3;
  });
  const all = [...first.body.messages, ...rest];
  t.same(
    all.map((message) => message.data),
    ['m0', 'm1', 'm2', 'm3', 'm4'],
    'each once, in order',
  );
  t.same((await setup.call('ack', { ackIds: all.map((message) => message.ackId) })).body.unknown, []);
});

t.test('an abandoned long-poll does not take the next message with it', async (t) => {
  const setup = await fresh(t, 'abandoned');
  const gone = fetch(`${setup.api}/v1/subscriptions/${setup.name}/pull`, {
    method: 'POST',
    body: JSON.stringify({ wait: '5s', lease: '60s' }),
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(300),
  }).catch(() => 'aborted');
  t.equal(await gone, 'aborted', 'the client gave up');
  await new Promise((resolve) => setTimeout(resolve, 100));
  await setup.publish('after the abandoned pull', { 'content-type': 'text/plain' });
  const started = Date.now();
  const message = await pullOne(t, setup, { wait: '3s' });
  t.match(message, { data: 'after the abandoned pull', attempt: 1 });
  t.ok(Date.now() - started < 1_500, 'the next pull gets it at once, not after a lease nobody holds');
  await setup.call('ack', { ackIds: [message.ackId] });
});

t.test('ack: the message is gone; unknown and spent ackIds are reported', async (t) => {
  const setup = await fresh(t, 'ack');
  await setup.publish('once', { 'content-type': 'text/plain' });
  const message = await pullOne(t, setup, { lease: '1s' });
  const { status, body } = await setup.call('ack', { ackIds: [message.ackId, 'never-issued'] });
  t.equal(status, 200);
  t.same(body, { acked: [message.ackId], unknown: ['never-issued'] });
  t.same((await setup.call('ack', { ackIds: [message.ackId] })).body, { acked: [], unknown: [message.ackId] }, 'twice');
  t.same(
    (await setup.call('nack', { ackIds: [message.ackId] })).body,
    { nacked: [], unknown: [message.ackId] },
    'nack after ack',
  );

  // Past the 1 s lease and a 1 s back-off: an acked message does not come back.
  t.same((await setup.call('pull', { wait: '2500ms' })).body, { messages: [] }, 'not redelivered');
  await setup.sidecar.stop();
  t.equal(await messageCount(`${setup.group}:${setup.topic}`), 0, 'the queue is empty');
  t.equal(await messageCount(`${setup.group}:${setup.topic}:dlq`), 0, 'nothing dead-lettered');
});

t.test('a lease that runs out is a nack: back with attempt 2 after the back-off', async (t) => {
  const setup = await fresh(t, 'lease');
  await setup.publish('slow', { 'content-type': 'text/plain', 'idempotency-key': 'slow-1' });
  const first = await pullOne(t, setup, { lease: '1s' });
  t.match(first, { id: 'slow-1', attempt: 1 });
  const leased = Date.now();
  t.same((await setup.call('pull', { wait: '0s' })).body, { messages: [] }, 'leased: nobody else gets it');

  const again = await pullOne(t, setup, { wait: '6s', lease: '30s' });
  const after = Date.now() - leased;
  t.match(again, { id: 'slow-1', data: 'slow', attempt: 2 });
  t.not(again.ackId, first.ackId, 'a new ackId');
  t.ok(after >= 2_000, `back after the 1 s lease and the 1 s back-off (${after} ms)`);
  t.ok(after < 4_500, `and not much later (${after} ms)`);

  t.same((await setup.call('ack', { ackIds: [first.ackId] })).body, { acked: [], unknown: [first.ackId] }, 'late ack');
  t.same((await setup.call('ack', { ackIds: [again.ackId] })).body, { acked: [again.ackId], unknown: [] });
});

t.test('nack: back with attempt + 1; retryAfter holds it; deadLetter parks it', async (t) => {
  const setup = await fresh(t, 'nack');
  await setup.publish('a', { 'content-type': 'text/plain', 'idempotency-key': 'nack-a' });
  const first = await pullOne(t, setup);
  t.equal(first.attempt, 1);
  let nackedAt = Date.now();
  t.same((await setup.call('nack', { ackIds: [first.ackId] })).body, { nacked: [first.ackId], unknown: [] });
  const second = await pullOne(t, setup);
  t.match(second, { id: 'nack-a', attempt: 2 });
  t.ok(Date.now() - nackedAt >= 950, 'after the 1 s back-off');

  nackedAt = Date.now();
  t.same((await setup.call('nack', { ackIds: [second.ackId], retryAfter: '2s' })).body.nacked, [second.ackId]);
  const third = await pullOne(t, setup);
  const held = Date.now() - nackedAt;
  t.match(third, { id: 'nack-a', attempt: 3 });
  t.ok(held >= 1_950, `retryAfter 2s: not before 2 s (${held} ms)`);
  t.ok(held < 4_000, `nor much later (${held} ms)`);
  t.same((await setup.call('ack', { ackIds: [third.ackId] })).body.acked, [third.ackId]);

  // retryAfter replaces the back-off (docs/api.md): "0s" is "again now", not "after the 1 s back-off".
  await setup.publish('c', { 'content-type': 'text/plain', 'idempotency-key': 'nack-c' });
  const soon = await pullOne(t, setup);
  nackedAt = Date.now();
  t.same((await setup.call('nack', { ackIds: [soon.ackId], retryAfter: '0s' })).body.nacked, [soon.ackId]);
  const back = await pullOne(t, setup);
  const quick = Date.now() - nackedAt;
  t.match(back, { id: 'nack-c', attempt: 2 });
  t.ok(quick < 800, `retryAfter 0s: back at once (${quick} ms)`);
  t.same((await setup.call('ack', { ackIds: [back.ackId] })).body.acked, [back.ackId]);

  await setup.publish('b', { 'content-type': 'application/json', 'idempotency-key': 'nack-b' });
  const doomed = await pullOne(t, setup);
  t.same((await setup.call('nack', { ackIds: [doomed.ackId], deadLetter: true })).body, {
    nacked: [doomed.ackId],
    unknown: [],
  });
  const parked = await until('the dead letter', async () => {
    const letters = await setup.deadLetters();
    return letters.length > 0 ? letters : undefined;
  });
  t.equal(parked.length, 1);
  t.match(parked[0], { id: 'nack-b', reason: 'nacked', attempts: 1 });
  t.same(
    (await setup.call('pull', { wait: '1500ms' })).body,
    { messages: [] },
    'a dead-lettered message does not return',
  );
});

t.test('after maxAttempts nacks the message is dead-lettered with reason max-attempts', async (t) => {
  const setup = await fresh(t, 'maxnack');
  await setup.publish('{"n": 1}', { 'content-type': 'application/json', 'idempotency-key': 'max-nack' });
  for (const attempt of [1, 2, 3]) {
    const message = await pullOne(t, setup);
    t.equal(message.attempt, attempt, `attempt ${attempt}`);
    t.same((await setup.call('nack', { ackIds: [message.ackId] })).body.nacked, [message.ackId]);
  }
  const parked = await until('the dead letter', async () => {
    const letters = await setup.deadLetters();
    return letters.length > 0 ? letters : undefined;
  });
  t.match(parked, [{ id: 'max-nack', reason: 'max-attempts', attempts: 3, data: { n: 1 } }]);
  t.same((await setup.call('pull', { wait: '1500ms' })).body, { messages: [] }, 'no fourth attempt');
});

t.test('after maxAttempts lease expiries the message is dead-lettered with reason max-attempts', async (t) => {
  const setup = await fresh(t, 'maxlease', { retry: { ...RETRY, maxAttempts: 2 } });
  await setup.publish('x', { 'content-type': 'text/plain', 'idempotency-key': 'max-lease' });
  t.equal((await pullOne(t, setup, { lease: '1s' })).attempt, 1);
  t.equal((await pullOne(t, setup, { lease: '1s', wait: '6s' })).attempt, 2);
  const parked = await until('the dead letter', async () => {
    const letters = await setup.deadLetters();
    return letters.length > 0 ? letters : undefined;
  });
  t.match(parked, [{ id: 'max-lease', reason: 'max-attempts', attempts: 2, lastError: /lease/ }]);
  t.same((await setup.call('pull', { wait: '1500ms' })).body, { messages: [] }, 'no third attempt');
});

t.test('a copy of an acked message that was already buffered is not handed out again', async (t) => {
  const setup = await fresh(t, 'inbox');
  const connection = await connect(BROKER_URL);
  t.teardown(() => connection.close());
  const channel = await connection.createConfirmChannel();
  const queue = `${setup.group}:${setup.topic}`;
  // At-least-once publishing: the same message twice, one right after the other.
  for (const body of ['first copy', 'second copy']) {
    channel.sendToQueue(queue, Buffer.from(body), { messageId: 'dup-1', contentType: 'text/plain', persistent: true });
  }
  await channel.waitForConfirms();
  await until('both buffered', async () => (await messageCount(queue)) === 0);
  const first = await pullOne(t, setup, { max: 1 });
  t.match(first, { id: 'dup-1', data: 'first copy' });
  t.same((await setup.call('ack', { ackIds: [first.ackId] })).body.acked, [first.ackId]);
  t.same((await setup.call('pull', { wait: '1s' })).body, { messages: [] }, 'the processed id is not pulled again');
  await setup.sidecar.stop();
  t.equal(await messageCount(queue), 0, 'the copy was acked, not left in the queue');
});

t.test('competing consumers: two sidecars in one group each get a share, every message once', async (t) => {
  const group = uniqueGroup('compete');
  const topic = uniqueTopic('pull.compete');
  deleteQueuesAtEnd(t, `${group}:${topic}`);
  const a = await startPull(t, { appId: 'worker-a', group, topic });
  const b = await startPull(t, { appId: 'worker-b', group, topic });
  const count = 40;
  for (let i = 0; i < count; i++) {
    await a.publish(JSON.stringify({ i }), { 'content-type': 'application/json', 'idempotency-key': `job-${i}` });
  }
  const got = { a: [] as Pulled[], b: [] as Pulled[] };
  const drain = async (who: 'a' | 'b', setup: PullSetup) => {
    for (let round = 0; round < 20 && got.a.length + got.b.length < count; round++) {
      const { body } = await setup.call('pull', { max: 7, wait: '500ms' });
      got[who].push(...body.messages);
      if (body.messages.length > 0) {
        const { body: acked } = await setup.call('ack', { ackIds: body.messages.map((message) => message.ackId) });
        t.same(acked.unknown, [], `${who} acks what it pulled`);
      }
    }
  };
  await Promise.all([drain('a', a), drain('b', b)]);
  const ids = [...got.a, ...got.b].map((message) => message.id);
  t.equal(ids.length, count, `${count} deliveries in all (a: ${got.a.length}, b: ${got.b.length})`);
  t.equal(new Set(ids).size, count, 'no message went to both');
  t.ok(got.a.length > 0 && got.b.length > 0, 'both replicas took part');
  t.ok(
    [...got.a, ...got.b].every((message) => message.attempt === 1),
    'every message on its first attempt',
  );
  const late = await Promise.all([a.call('pull', { wait: '1s' }), b.call('pull', { wait: '1s' })]);
  t.same(
    late.map(({ body }) => body.messages.length),
    [0, 0],
    'nothing left for either',
  );
});

t.test('a message one replica buffered but nobody pulled goes to another replica after 10 s', async (t) => {
  const group = uniqueGroup('release');
  const topic = uniqueTopic('pull.release');
  deleteQueuesAtEnd(t, `${group}:${topic}`);
  const queue = `${group}:${topic}`;
  // The broker hands messages to its consumers in turn, first to the one that came first.
  const a = await startPull(t, { appId: 'idle-a', group, topic });
  const b = await startPull(t, { appId: 'busy-b', group, topic });
  const publish = async (id: string) => {
    await a.publish(id, { 'content-type': 'text/plain', 'idempotency-key': id });
    await until(`${id} taken by a consumer`, async () => (await messageCount(queue)) === 0);
  };
  await publish('m0');
  const m0 = (await a.call('pull', { wait: '0s' })).body.messages;
  t.same(
    m0.map((message) => message.id),
    ['m0'],
    'replica a took m0',
  );
  await a.call('ack', { ackIds: m0.map((message) => message.ackId) });
  // m2 reaches a's buffer 3 s after m0 did: its 10 s count from then, not from m0.
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  await publish('m1');
  await publish('m2');
  const buffered = Date.now();
  const m1 = (await b.call('pull', { wait: '0s' })).body.messages;
  t.same(
    m1.map((message) => message.id),
    ['m1'],
    'replica b took m1, so m2 waits in replica a',
  );
  await b.call('ack', { ackIds: m1.map((message) => message.ackId) });

  const { body } = await b.call('pull', { wait: '15s' });
  const after = Date.now() - buffered;
  t.match(body.messages, [{ id: 'm2', attempt: 1 }], 'replica b gets m2, attempt unchanged');
  t.ok(after >= 9_500 && after < 12_000, `after about 10 s unpulled (${after} ms)`);
  await b.call('ack', { ackIds: body.messages.map((message) => message.ackId) });
});

t.test('shutdown: a waiting pull ends empty, leased messages go back with attempt unchanged', async (t) => {
  const group = uniqueGroup('shutdown');
  const topic = uniqueTopic('pull.shutdown');
  deleteQueuesAtEnd(t, `${group}:${topic}`);
  const first = await startPull(t, { group, topic });
  await first.publish('kept', { 'content-type': 'text/plain', 'idempotency-key': 'kept-1' });
  const leased = await pullOne(t, first, { lease: '60s' });
  t.equal(leased.attempt, 1);
  const waiting = first.call('pull', { wait: '20s' });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const stopping = Date.now();
  await first.sidecar.stop();
  const { status, body } = await waiting;
  t.equal(status, 200);
  t.same(body, { messages: [] }, 'the waiting pull is answered empty');
  t.ok(Date.now() - stopping < 5_000, 'at once, not after its wait');
  t.equal(await messageCount(`${group}:${topic}`), 1, 'the leased message is back in the queue');

  const second = await startPull(t, { appId: 'puller-2', group, topic });
  const again = await pullOne(t, second);
  t.match(again, { id: 'kept-1', data: 'kept', attempt: 1 }, 'a hand-back is not an attempt');
  await second.call('ack', { ackIds: [again.ackId] });
});

t.test('errors: unknown subscription, push subscription, bad bodies', async (t) => {
  const group = uniqueGroup('errors');
  const topic = uniqueTopic('pull.errors');
  const pushTopic = uniqueTopic('pull.errors.push');
  deleteQueuesAtEnd(t, `${group}:${topic}`);
  deleteQueuesAtEnd(t, `${group}:${pushTopic}`);
  const closedPort = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
  const { api } = await startInProcess(t, {
    appId: 'errors',
    app: { port: closedPort },
    subscriptions: [
      { name: 'jobs', topic, group, mode: 'pull', retry: RETRY },
      { name: 'pushed', topic: pushTopic, group, mode: 'push', route: '/events' },
    ],
  });
  const url = (name: string, verb: string) => `${api}/v1/subscriptions/${name}/${verb}`;
  const cases: [string, unknown, number, string][] = [
    [url('nope', 'pull'), {}, 404, 'SUBSCRIPTION_UNKNOWN'],
    [url('nope', 'ack'), { ackIds: ['x'] }, 404, 'SUBSCRIPTION_UNKNOWN'],
    [url('nope', 'nack'), { ackIds: ['x'] }, 404, 'SUBSCRIPTION_UNKNOWN'],
    [url('pushed', 'pull'), {}, 409, 'SUBSCRIPTION_NOT_PULL'],
    [url('pushed', 'ack'), { ackIds: ['x'] }, 409, 'SUBSCRIPTION_NOT_PULL'],
    [url('pushed', 'nack'), { ackIds: ['x'] }, 409, 'SUBSCRIPTION_NOT_PULL'],
    [url('jobs', 'pull'), { max: 0 }, 400, 'REQUEST_INVALID'],
    [url('jobs', 'pull'), { max: 1.5 }, 400, 'REQUEST_INVALID'],
    [url('jobs', 'pull'), { max: '10' }, 400, 'REQUEST_INVALID'],
    [url('jobs', 'pull'), { wait: 'abc' }, 400, 'REQUEST_INVALID'],
    [url('jobs', 'pull'), { wait: '-1s' }, 400, 'REQUEST_INVALID'],
    [url('jobs', 'pull'), { lease: 'forever' }, 400, 'REQUEST_INVALID'],
    [url('jobs', 'pull'), { max: 1, bogus: true }, 400, 'REQUEST_INVALID'],
    [url('jobs', 'pull'), '{"max": 1', 400, 'REQUEST_INVALID'],
    [url('jobs', 'ack'), { ackIds: [] }, 400, 'REQUEST_INVALID'],
    [url('jobs', 'ack'), {}, 400, 'REQUEST_INVALID'],
    [url('jobs', 'ack'), { ackIds: ['x'], extra: 1 }, 400, 'REQUEST_INVALID'],
    [url('jobs', 'nack'), { ackIds: [] }, 400, 'REQUEST_INVALID'],
    [url('jobs', 'nack'), { ackIds: ['x'], retryAfter: 'soon' }, 400, 'REQUEST_INVALID'],
    [url('jobs', 'nack'), { ackIds: ['x'], deadLetter: 'yes' }, 400, 'REQUEST_INVALID'],
  ];
  for (const [where, body, status, code] of cases) {
    const what = `${where.slice(api.length)} ${typeof body === 'string' ? body : JSON.stringify(body)}`;
    const response = await post(where, body);
    t.equal(response.status, status, `${what} -> ${status}`);
    t.match(response.type, /^application\/problem\+json/, `${what}: problem+json`);
    t.match(response.body, { code, status, title: String, type: /^https:\/\//, detail: String }, `${what} -> ${code}`);
  }
  const wait = await post(url('jobs', 'pull'), { wait: 'abc' });
  t.match(wait.body.detail, /wait/, 'the detail names the field');
  const unknownField = await post(url('jobs', 'pull'), { bogus: true });
  t.match(unknownField.body.detail, /bogus/, 'the detail names the unknown field');
});
