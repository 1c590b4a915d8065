// The confirm publisher against the real RabbitMQ: many publishes in flight,
// unroutable ones told apart, and nothing left hanging when the channel goes
// away while publishes wait for room in the socket.
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'amqplib';
import t from 'tap';
import { BROKER_URL } from '../../../test/support/in-process.ts';
import { createLogger } from '../../telemetry/logger.ts';
import { BrokerUnavailableError } from '../broker.ts';
import { ConfirmPublisher, type Declaration, type PublishProperties } from './confirm-publisher.ts';

const logger = createLogger('silent');
const unique = (what: string) => `test-confirm-${what}-${process.pid}-${Date.now()}`;
const properties = (messageId: string): PublishProperties => ({
  messageId,
  headers: {},
  persistent: true,
  mandatory: true,
});

t.test('publishes in flight together; routed or not, as the broker says; the exchange declared once', async (t) => {
  const model = await connect(BROKER_URL);
  t.teardown(() => model.close().catch(() => {}));
  const exchange = unique('exchange');
  const queue = unique('queue');
  let declarations = 0;
  const declaration: Declaration = {
    key: `topic:${exchange}`,
    declare: async (channel) => {
      declarations += 1;
      await channel.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    },
  };
  const publisher = new ConfirmPublisher(logger);
  await publisher.attach(model);
  const setup = await model.createChannel();
  t.teardown(async () => {
    await setup.deleteQueue(queue).catch(() => {});
    await setup.deleteExchange(exchange).catch(() => {});
  });

  const first = await publisher.publish(exchange, 'nobody.listens', Buffer.from('x'), properties('u1'), declaration);
  t.same(first, { routed: false }, 'no queue bound yet: the broker returned it');
  await setup.assertQueue(queue, { durable: false });
  await setup.bindQueue(queue, exchange, 'wanted.#');

  const outcomes = Array.from({ length: 200 }, (_, i) =>
    publisher.publish(
      exchange,
      i % 2 === 0 ? 'wanted.x' : 'other.x',
      Buffer.from(`m${i}`),
      properties(`m${i}`),
      declaration,
    ),
  );
  t.ok(publisher.publishesInFlight > 1, 'many publishes wait for their confirms at once');
  const settled = await Promise.all(outcomes);
  t.equal(settled.filter((outcome) => outcome.routed).length, 100, 'the routed half');
  t.equal(publisher.publishesInFlight, 0, 'nothing left in flight');
  t.equal(declarations, 1, 'declared once on the channel, not per publish');
  t.equal((await setup.checkQueue(queue)).messageCount, 100, 'exactly the routed ones are in the queue');
});

t.test('publishes waiting for the socket to drain fail with BrokerUnavailable when the connection goes', async (t) => {
  const model = await connect(BROKER_URL);
  const exchange = unique('drain');
  const publisher = new ConfirmPublisher(logger);
  await publisher.attach(model);
  const setup = await model.createChannel();
  await setup.assertExchange(exchange, 'topic', { durable: false, autoDelete: true });
  // 3,000 publishes in one tick: more frames than the channel's write buffer holds (amqplib's
  // high-water mark is 1,024 frames), so the later ones wait for 'drain' when the connection dies.
  const outcomes = Array.from({ length: 3000 }, (_, i) =>
    publisher.publish(exchange, 'k', Buffer.from(`m${i}`), properties(`m${i}`)).then(
      () => 'confirmed',
      (error: unknown) => (error instanceof BrokerUnavailableError ? 'unavailable' : `other: ${error}`),
    ),
  );
  model.on('error', () => {}); // the loss below is the point
  // amqplib's socket (not in its types): as if the network failed.
  (model.connection as unknown as { stream: Socket }).stream.destroy(new Error('test: the connection was lost'));
  publisher.detach();
  let settled: string[] | 'hung' = 'hung';
  const timer = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 10_000).unref());
  settled = await Promise.race([Promise.all(outcomes), timer]);
  t.not(settled, 'hung', 'every publish settled');
  if (settled !== 'hung') {
    t.ok(settled.includes('unavailable'), 'the unconfirmed ones failed as broker-unavailable');
    t.same(
      settled.filter((outcome) => outcome !== 'confirmed' && outcome !== 'unavailable'),
      [],
      'no other kind of failure',
    );
  }
  t.equal(publisher.publishesInFlight, 0, 'nothing counted in flight');
  await publisher.publish(exchange, 'k', Buffer.from('x'), properties('after')).then(
    () => t.fail('published with no connection'),
    (error: unknown) => t.type(error, BrokerUnavailableError, 'a publish after detach fails at once'),
  );
});

t.test('the same message id routed and returned at once: each publish gets its own outcome', async (t) => {
  // A consumer dead-letters a message while the app's own publish of it (same id) is not yet
  // confirmed: the broker's return of one copy must not be read as the other's.
  const model = await connect(BROKER_URL);
  t.teardown(() => model.close().catch(() => {}));
  const queue = unique('durable');
  const setup = await model.createChannel();
  await setup.assertQueue(queue, { durable: true });
  t.teardown(() => setup.deleteQueue(queue).catch(() => {}));
  const publisher = new ConfirmPublisher(logger);
  await publisher.attach(model);
  const body = Buffer.alloc(64 * 1024, 'x'); // durable and large: its confirm waits for the disk
  const outcomes = await Promise.all(
    Array.from({ length: 100 }, (_, i) => [
      publisher.publish('', queue, body, properties(`same-${i}`)),
      publisher.publish('', unique('gone'), Buffer.from('y'), properties(`same-${i}`)),
    ]).flat(),
  );
  t.same(
    outcomes.map((outcome) => outcome.routed),
    Array.from({ length: 200 }, (_, i) => i % 2 === 0),
    'the queued copies routed, the returned ones not',
  );
  t.equal((await setup.checkQueue(queue)).messageCount, 100);
});

t.test('past the cap the oldest declaration is forgotten, even one under way; racing publishes arrive', async (t) => {
  // An app publishing to a new topic per tenant, for ever: the publisher remembers two declarations here.
  const model = await connect(BROKER_URL);
  t.teardown(() => model.close().catch(() => {}));
  const setup = await model.createChannel();
  const [x, a, b] = ['x', 'a', 'b'].map((name) => unique(`cap-${name}`)) as [string, string, string];
  t.teardown(async () => {
    for (const name of [x, a, b]) {
      await setup.deleteQueue(name).catch(() => {});
      await setup.deleteExchange(name).catch(() => {});
    }
  });
  const declares = new Map<string, number>();
  // Nothing exists until the declaration runs: an exchange, and a queue bound to it. A publish sent
  // before it would fail (no exchange) or be returned (no queue yet).
  const declaration = (name: string): Declaration => ({
    key: `topic:${name}`,
    declare: async (channel) => {
      declares.set(name, (declares.get(name) ?? 0) + 1);
      await sleep(50); // still under way while the publishes after it go out
      await channel.assertExchange(name, 'topic', { durable: false });
      await channel.assertQueue(name, { durable: false });
      await channel.bindQueue(name, name, '#');
    },
  });
  const publisher = new ConfirmPublisher(logger, { maxDeclarations: 2 });
  await publisher.attach(model);
  const publish = (name: string, id: string) =>
    publisher.publish(name, 'k', Buffer.from(id), properties(id), declaration(name));

  // In one tick: x's declaration starts, b's pushes it out while under way, x's second publish declares
  // x again (pushing out a's, also under way).
  const racing = await Promise.all([publish(x, 'x1'), publish(a, 'a1'), publish(b, 'b1'), publish(x, 'x2')]);
  t.same(
    racing.map((outcome) => outcome.routed),
    [true, true, true, true],
    'every publish went out after its declaration, into the queue it made',
  );
  t.equal(publisher.declarationsRemembered, 2, 'two remembered: the cap, full');
  t.same(Object.fromEntries(declares), { [x]: 2, [a]: 1, [b]: 1 }, 'x forgotten under way, so declared again');

  t.same(await publish(x, 'x3'), { routed: true });
  t.equal(declares.get(x), 2, 'x remembered since: not declared again');
  t.same(await publish(a, 'a2'), { routed: true }, 'a publish to a forgotten topic arrives');
  t.equal(declares.get(a), 2, 'a forgotten: declared again');
  t.equal(publisher.declarationsRemembered, 2, 'still two');
  t.equal(publisher.publishesInFlight, 0);

  const bodies = async (queue: string) => {
    const got: string[] = [];
    for (let message = await setup.get(queue); message !== false; message = await setup.get(queue)) {
      got.push(message.content.toString());
    }
    return got.sort();
  };
  t.same(await bodies(x), ['x1', 'x2', 'x3']);
  t.same(await bodies(a), ['a1', 'a2']);
  t.same(await bodies(b), ['b1']);
});
