// The delay cascade against the real RabbitMQ: what arrives where, and when.
// Test resources are named test-cascade-*, deleted at the end of each test; the
// cascade itself (outrigger.delay.*) is shared by everything on the broker and stays.
import { type Channel, type ConfirmChannel, connect, type GetMessage } from 'amqplib';
import t, { type Test } from 'tap';
import {
  bindQueueToCascade,
  bindTopicToCascade,
  DELAY_DELIVERY_EXCHANGE,
  DELAY_LEVELS,
  DELAY_SINK_QUEUE,
  type DelayDestination,
  declareDelayCascade,
  delayedPublishAddress,
  delayLevelName,
  delayRoutingKey,
  delaySeconds,
  firstDelayLevel,
  MAX_DELAY_MS,
  MAX_DELAY_SECONDS,
} from './delay-cascade.ts';

const BROKER_URL = process.env.OUTRIGGER_TEST_BROKER_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const DAY = 86_400;

let counter = 0;
const unique = (what: string) => `test-cascade-${what}-${process.pid}-${Date.now()}-${counter++}`;

/** The 28 bit words of a key, as one string of 0s and 1s. */
const bitsOf = (key: string) => key.split('.').slice(0, DELAY_LEVELS).join('');

t.test('a delay in milliseconds becomes whole seconds, rounded up so it is never early', async (t) => {
  t.equal(delaySeconds(0), 0, '0 stays 0');
  t.equal(delaySeconds(0.5), 1, 'a fraction of a millisecond is still a delay');
  t.equal(delaySeconds(1), 1);
  t.equal(delaySeconds(250), 1);
  t.equal(delaySeconds(1000), 1);
  t.equal(delaySeconds(1001), 2);
  t.equal(delaySeconds(7 * DAY * 1000), 7 * DAY);
  t.equal(delaySeconds(MAX_DELAY_MS), MAX_DELAY_SECONDS);
  for (const bad of [-1, MAX_DELAY_MS + 1, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => delaySeconds(bad), /a delay must be 0 to 268435455000 ms \(about 8.5 years\)/, `${bad} ms`);
  }
});

t.test('the routing key spells the delay in binary, level 27 first, then the destination', async (t) => {
  const queue = { queue: 'ingestion' };
  t.equal(bitsOf(delayRoutingKey(0, queue)), '0'.repeat(28));
  t.equal(bitsOf(delayRoutingKey(1, queue)), `${'0'.repeat(27)}1`);
  t.equal(bitsOf(delayRoutingKey(2, queue)), `${'0'.repeat(26)}10`);
  t.equal(bitsOf(delayRoutingKey(3, queue)), `${'0'.repeat(26)}11`);
  // 7 days = 604800 s = 2^19 + 2^16 + 2^13 + 2^12 + 2^11 + 2^9 + 2^7
  t.equal(bitsOf(delayRoutingKey(7 * DAY, queue)), '0000000010010011101010000000');
  // 365 days = 31536000 s = 2^24 + 2^23 + 2^22 + 2^21 + 2^16 + 2^13 + 2^12 + 2^9 + 2^8 + 2^7
  t.equal(bitsOf(delayRoutingKey(365 * DAY, queue)), '0001111000010011001110000000');
  t.equal(bitsOf(delayRoutingKey(MAX_DELAY_SECONDS, queue)), '1'.repeat(28));

  t.equal(delayRoutingKey(5, { topic: 'sensor.readings' }), `${'0.'.repeat(25)}1.0.1.t.sensor.readings`);
  t.equal(delayRoutingKey(5, { queue: 'ingestion.retry' }), `${'0.'.repeat(25)}1.0.1.q.ingestion.retry`);

  t.equal(firstDelayLevel(0), undefined, 'no delay waits in no level');
  t.equal(firstDelayLevel(1), 0);
  t.equal(firstDelayLevel(3), 1);
  t.equal(firstDelayLevel(7 * DAY), 19);
  t.equal(firstDelayLevel(365 * DAY), 24);
  t.equal(firstDelayLevel(MAX_DELAY_SECONDS), 27);
  t.same(delayedPublishAddress(7 * DAY, queue), {
    exchange: 'outrigger.delay.19',
    routingKey: delayRoutingKey(7 * DAY, queue),
  });
  t.equal(delayedPublishAddress(0, queue).exchange, 'outrigger.delay.0', 'no delay goes straight through level 0');
});

t.test('a delay that is not a whole number of seconds in range is refused, saying why', async (t) => {
  const message = /a delay must be a whole number of seconds from 0 to 268435455 \(about 8.5 years\), got /;
  for (const bad of [-1, 1.5, MAX_DELAY_SECONDS + 1, Number.NaN]) {
    t.throws(() => delayRoutingKey(bad, { topic: 'a' }), message, `${bad} s`);
    t.throws(() => firstDelayLevel(bad), message);
  }
  t.throws(() => delayRoutingKey(1, { topic: '' }), /a delayed message needs a topic name/);
  t.throws(() => delayRoutingKey(1, { queue: '' }), /a delayed message needs a queue name/);
});

t.test('a name too long for the key, or with wildcard words, travels as its hash', async (t) => {
  const longest = `a${'b'.repeat(199)}`; // the contract allows topics of 200 characters
  const key = delayRoutingKey(MAX_DELAY_SECONDS, { topic: longest });
  t.ok(Buffer.byteLength(key) <= 255, 'fits in an AMQP routing key');
  t.match(key.split('.').slice(DELAY_LEVELS), ['th', /^[0-9a-f]{64}$/]);
  t.not(key, delayRoutingKey(MAX_DELAY_SECONDS, { topic: `${longest.slice(0, -1)}c` }), 'different names differ');
  const fits = 'c'.repeat(197);
  t.equal(delayRoutingKey(1, { topic: fits }).split('.').slice(DELAY_LEVELS).join('.'), `t.${fits}`);
  t.match(delayRoutingKey(1, { queue: 'a.*.b' }).split('.').slice(DELAY_LEVELS), ['qh', /^[0-9a-f]{64}$/]);
  t.match(delayRoutingKey(1, { queue: 'a.#' }).split('.').slice(DELAY_LEVELS), ['qh', /^[0-9a-f]{64}$/]);
});

/** A connection and confirm channel of the test's own, the cascade declared; resources cleaned up at the end. */
async function broker(t: Test) {
  const connection = await connect(BROKER_URL);
  const channel = await connection.createConfirmChannel();
  const cleanups: ((cleanup: Channel) => Promise<unknown>)[] = [];
  t.teardown(async () => {
    // A channel of its own: the test's channel may have been closed by an error.
    const cleanup = await connection.createChannel();
    for (const step of cleanups.reverse()) await step(cleanup).catch(() => {});
    await connection.close().catch(() => {});
  });
  await declareDelayCascade(channel);

  /** A durable queue, deleted at the end (with its bindings). */
  const queue = async (name: string): Promise<string> => {
    await channel.assertQueue(name, { durable: true });
    cleanups.push((cleanup) => cleanup.deleteQueue(name));
    return name;
  };
  /** A topic bound to the cascade, with a new queue per name in `groups` bound to it with '#'. */
  const topic = async (name: string, ...groups: string[]): Promise<void> => {
    await bindTopicToCascade(channel, name);
    cleanups.push((cleanup) => cleanup.deleteExchange(name));
    for (const group of groups) await channel.bindQueue(await queue(group), name, '#');
  };
  /** Publishes as the sidecar will (persistent, mandatory) and waits for the broker's confirm. */
  const publishDelayed = async (seconds: number, destination: DelayDestination, body: string): Promise<void> => {
    const { exchange, routingKey } = delayedPublishAddress(seconds, destination);
    channel.publish(exchange, routingKey, Buffer.from(body), { persistent: true, mandatory: true });
    await channel.waitForConfirms();
  };
  return { channel, queue, topic, publishDelayed };
}

interface Arrival {
  body: string;
  at: number;
  message: GetMessage;
}

/** Takes messages off `queue` until `count` have come or `withinMs` has passed. */
async function receive(channel: ConfirmChannel, queue: string, count: number, withinMs: number): Promise<Arrival[]> {
  const arrivals: Arrival[] = [];
  const deadline = Date.now() + withinMs;
  while (arrivals.length < count && Date.now() < deadline) {
    const message = await channel.get(queue, { noAck: true });
    if (message === false) await new Promise((resolve) => setTimeout(resolve, 10));
    else arrivals.push({ body: message.content.toString(), at: Date.now(), message });
  }
  return arrivals;
}

const bodies = (arrivals: Arrival[]) => arrivals.map((arrival) => arrival.body);

/**
 * Messages still in each queue, once the one that was waited for has arrived. The delivery
 * exchange routes a message to every match at once, so a stray copy would be there by now.
 */
async function leftIn(channel: ConfirmChannel, queues: string[]): Promise<number[]> {
  await new Promise((resolve) => setTimeout(resolve, 200));
  return Promise.all(queues.map(async (queue) => (await channel.checkQueue(queue)).messageCount));
}

t.test('declaring the cascade again, even from two sidecars at once, changes nothing', async (t) => {
  const { channel, queue, publishDelayed } = await broker(t);
  const other = await connect(BROKER_URL);
  t.teardown(() => other.close());
  await t.resolves(
    Promise.all([declareDelayCascade(channel), declareDelayCascade(await other.createChannel())]),
    'a second and a concurrent declaration succeed (same arguments, or the broker would refuse)',
  );
  for (let level = 0; level < DELAY_LEVELS; level++) {
    await channel.checkExchange(delayLevelName(level));
    await channel.checkQueue(delayLevelName(level));
  }
  await channel.checkExchange(DELAY_DELIVERY_EXCHANGE);
  await channel.checkQueue(DELAY_SINK_QUEUE);

  const target = await queue(unique('once'));
  await bindQueueToCascade(channel, target);
  await bindQueueToCascade(channel, target);
  await publishDelayed(1, { queue: target }, 'once');
  t.same(bodies(await receive(channel, target, 1, 2_500)), ['once']);
  t.same(await leftIn(channel, [target]), [0], 'delivered once, not once per declaration');
});

t.test('a message delayed 2 s arrives after 2 s, and not much later', async (t) => {
  const { channel, queue, publishDelayed } = await broker(t);
  const target = await queue(unique('two-seconds'));
  await bindQueueToCascade(channel, target);
  const publishedAt = Date.now();
  await publishDelayed(2, { queue: target }, 'due');
  const [arrival] = await receive(channel, target, 1, 5_000);
  t.ok(arrival, 'it arrives');
  const waited = (arrival?.at ?? Number.POSITIVE_INFINITY) - publishedAt;
  t.comment(`arrived ${waited - 2_000} ms after its due time`);
  t.ok(waited >= 2_000, `not early (${waited} ms)`);
  t.ok(waited <= 3_500, `at most 1.5 s late (${waited} ms)`);
});

t.test('messages published together arrive in the order of their delays', async (t) => {
  const { channel, queue, publishDelayed } = await broker(t);
  const target = await queue(unique('order'));
  await bindQueueToCascade(channel, target);
  await publishDelayed(3, { queue: target }, 'three');
  await publishDelayed(1, { queue: target }, 'one');
  t.same(bodies(await receive(channel, target, 2, 5_500)), ['one', 'three']);
});

t.test('a topic destination reaches every group on that topic, and no topic that merely ends like it', async (t) => {
  const { channel, topic, publishDelayed } = await broker(t);
  const base = unique('topic');
  const readings = `${base}.sensor.readings`;
  // Both end with every word of `readings`; the second would slip through a `#.t.<topic>` binding.
  const suffixed = `${base}.x.${readings}`;
  const spoofed = `${base}.t.${readings}`;
  // Each group queue, and the message it should get: the one for its own topic.
  const groups: Record<string, string> = {
    [`${base}-a`]: 'readings',
    [`${base}-b`]: 'readings',
    [`${base}-x`]: 'suffixed',
    [`${base}-t`]: 'spoofed',
  };
  await topic(readings, `${base}-a`, `${base}-b`);
  await topic(suffixed, `${base}-x`);
  await topic(spoofed, `${base}-t`);

  await publishDelayed(1, { topic: readings }, 'readings');
  await publishDelayed(1, { topic: suffixed }, 'suffixed');
  await publishDelayed(1, { topic: spoofed }, 'spoofed');
  for (const [group, expected] of Object.entries(groups)) {
    t.same(bodies(await receive(channel, group, 1, 2_500)), [expected], `${group} gets its own topic's message`);
  }
  t.same(await leftIn(channel, Object.keys(groups)), [0, 0, 0, 0], 'and no other');
});

t.test('a topic too long to spell in the key is delayed too', async (t) => {
  const { channel, topic, publishDelayed } = await broker(t);
  const long = `${unique('long')}.${'x'.repeat(150)}`.slice(0, 200);
  const group = unique('long-group');
  await topic(long, group);
  await publishDelayed(1, { topic: long }, 'long');
  t.same(bodies(await receive(channel, group, 1, 2_500)), ['long']);
});

t.test('a queue destination (a retry) reaches that queue only, not the other groups on its topic', async (t) => {
  const { channel, topic, publishDelayed } = await broker(t);
  const readings = `${unique('retry')}.sensor.readings`;
  const [retrying, other] = [`${readings}-retrying`, `${readings}-other`];
  await topic(readings, retrying, other);
  await bindQueueToCascade(channel, retrying);
  await bindQueueToCascade(channel, other);

  await publishDelayed(1, { queue: retrying }, 'retry');
  t.same(bodies(await receive(channel, retrying, 1, 2_500)), ['retry']);
  t.same(await leftIn(channel, [other]), [0], 'the other group does not get the retry');
});

t.test('a message delayed 7 days waits in level 19 first, one delayed 365 days in level 24', async (t) => {
  const { channel, publishDelayed } = await broker(t);
  const destination = { queue: unique('long-delay') };
  const levels = [firstDelayLevel(7 * DAY), firstDelayLevel(365 * DAY)].map((level) => delayLevelName(level ?? 0));
  t.same(levels, ['outrigger.delay.19', 'outrigger.delay.24']);
  // The level queues are shared with every sidecar on the broker. This is a test broker and
  // nothing else delays a message for days here, so purging these two levels loses no one's message.
  t.teardown(async () => {
    for (const level of levels) await channel.purgeQueue(level);
  });
  const before = await Promise.all(levels.map(async (level) => (await channel.checkQueue(level)).messageCount));
  await publishDelayed(7 * DAY, destination, 'a week');
  await publishDelayed(365 * DAY, destination, 'a year');
  const after = await Promise.all(levels.map(async (level) => (await channel.checkQueue(level)).messageCount));
  t.same(
    after.map((count, i) => count - (before[i] ?? 0)),
    [1, 1],
    'one message more in each',
  );
});

t.test('a delayed message survives the close of the connection it was published on', async (t) => {
  const { channel, queue } = await broker(t);
  const target = await queue(unique('durable'));
  await bindQueueToCascade(channel, target);

  const publisher = await connect(BROKER_URL);
  const publishing = await publisher.createConfirmChannel();
  const { exchange, routingKey } = delayedPublishAddress(2, { queue: target });
  publishing.publish(exchange, routingKey, Buffer.from('kept'), { persistent: true, mandatory: true });
  await publishing.waitForConfirms();
  await publishing.close();
  await publisher.close();

  t.equal((await channel.checkQueue(target)).messageCount, 0, 'not there before its time');
  const [arrival] = await receive(channel, target, 1, 4_000);
  t.equal(arrival?.body, 'kept');
  t.equal(arrival?.message.properties.deliveryMode, 2, 'still persistent');
});

t.test('messages due for a destination nobody listens on do not hold up the others', async (t) => {
  const { channel, queue, publishDelayed } = await broker(t);
  const target = await queue(unique('after-unroutable'));
  await bindQueueToCascade(channel, target);
  // Each level's dead-letter worker keeps at most 32 messages in flight; without the sink, 40
  // messages that route nowhere would stay in flight for ever and stop level 0 for everyone.
  const nowhere = { topic: unique('nobody-listens') };
  for (let i = 0; i < 40; i++) {
    const { exchange, routingKey } = delayedPublishAddress(1, nowhere);
    channel.publish(exchange, routingKey, Buffer.from(`unroutable ${i}`), { persistent: true, mandatory: true });
  }
  await publishDelayed(1, { queue: target }, 'after them');
  t.same(bodies(await receive(channel, target, 1, 3_000)), ['after them']);
});
