// The RabbitBroker's publish path against the real RabbitMQ, with fewer topics
// remembered than an app publishes to: what it keeps per topic stays bounded,
// and a topic it forgot still reaches its queue.
import { connect } from 'amqplib';
import t, { type Test } from 'tap';
import { BROKER_URL, drain, queueOn, uniqueTopic } from '../../../test/support/in-process.ts';
import { until } from '../../../test/support/wait.ts';
import { createLogger } from '../../telemetry/logger.ts';
import { Metrics } from '../../telemetry/metrics.ts';
import { VERSION } from '../../version.ts';
import type { OutgoingMessage } from '../broker.ts';
import { RabbitBroker } from './rabbit-broker.ts';

const MAX_TOPICS = 2;

/** A started broker remembering MAX_TOPICS topics; every exchange its publishes made is deleted at the end. */
async function startBroker(t: Test) {
  const topics: string[] = [];
  const connection = await connect(BROKER_URL);
  t.teardown(() => connection.close().catch(() => {}));
  const channel = await connection.createChannel();
  t.teardown(async () => {
    for (const topic of topics) await channel.deleteExchange(topic).catch(() => {});
  });
  const broker = new RabbitBroker({
    url: BROKER_URL,
    heartbeatMs: 15_000,
    reconnect: { initialMs: 100, maxMs: 1_000 },
    appId: 'cap-test',
    logger: createLogger('silent'),
    metrics: new Metrics({ version: VERSION, appId: 'cap-test' }),
    maxRememberedTopics: MAX_TOPICS,
  });
  t.teardown(() => broker.close());
  await broker.start();
  await until('the broker connection', () => broker.state === 'connected');
  const topic = (name: string) => {
    const made = uniqueTopic(name);
    topics.push(made);
    return made;
  };
  const publish = (topic: string, id: string, delayMs?: number) => {
    const message: OutgoingMessage = { topic, id, body: Buffer.from(id), headers: {}, delayMs };
    return broker.publish(message);
  };
  /** Full, not past it: once MAX_TOPICS topics were published to, exactly that many are remembered. */
  const bounded = (t: Test, when: string) => {
    t.equal(broker.rememberedTopics, MAX_TOPICS, `${when}: ${broker.rememberedTopics} topics remembered`);
  };
  return { broker, channel, topic, publish, bounded };
}

const ids = (messages: { properties: { messageId?: string } }[]) =>
  messages.map((message) => message.properties.messageId).sort();

t.test('more topics than remembered: what is kept stays bounded; a forgotten topic still arrives', async (t) => {
  const { channel, topic, publish, bounded } = await startBroker(t);
  const tenant = topic('tenant');
  const queue = await queueOn(t, channel, tenant);
  t.same(await publish(tenant, 'first'), { routed: true });

  for (let i = 0; i < 10; i++) {
    const other = topic(`other-${i}`);
    t.same(await publish(other, `other-${i}`, i % 2 === 0 ? 0 : 1_000), { routed: i % 2 === 1 });
    bounded(t, `after ${i + 1} other topics`);
  }

  // Gone from the broker too: only a declaration made again lets the publish through (else a 404 closes the channel).
  await channel.deleteExchange(tenant);
  t.same(await publish(tenant, 'redeclared'), { routed: false }, 'the forgotten topic, declared again');
  await channel.bindQueue(queue, tenant, '#');
  t.same(await publish(tenant, 'after'), { routed: true }, 'and published to its queue, bound again');
  t.same(await publish(tenant, 'delayed', 1_000), { routed: true }, 'a delayed publish to it arrives too');
  bounded(t, 'after the forgotten topic');
  t.same(ids(await drain(channel, queue)), ['after', 'first'], 'both arrived at the bound queue');
  const delayed = await until('the delayed message', async () => (await drain(channel, queue))[0], {
    timeoutMs: 8_000,
  });
  t.equal(delayed.properties.messageId, 'delayed');
});

t.test('a publish racing with the eviction of its own topic arrives, and none goes out early', async (t) => {
  const { channel, topic, publish, bounded } = await startBroker(t);
  const tenant = topic('racing');
  const queue = await queueOn(t, channel, tenant);
  // In one tick: the tenant's declaration starts, the new topics after it push it out while it is
  // under way, and the tenant's second publish declares it again. The new topics' exchanges do not
  // exist: a publish sent before its declaration would close the channel, failing every publish in flight.
  const others = Array.from({ length: 5 }, (_, i) => topic(`racing-other-${i}`));
  const outcomes = await Promise.all([
    publish(tenant, 'one'),
    ...others.map((other, i) => publish(other, `other-${i}`)),
    publish(tenant, 'two'),
  ]);
  t.same(
    outcomes.map((outcome) => outcome.routed),
    [true, false, false, false, false, false, true],
    'all confirmed; only the tenant has a queue',
  );
  bounded(t, 'after the race');
  t.same(ids(await drain(channel, queue)), ['one', 'two']);
});
