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

t.test('a declaration is made once per channel, waited for while under way; a failed one is made again', async (t) => {
  const model = await connect(BROKER_URL);
  t.teardown(() => model.close().catch(() => {}));
  const setup = await model.createChannel();
  const name = unique('declared');
  t.teardown(async () => {
    await setup.deleteQueue(name).catch(() => {});
    await setup.deleteExchange(name).catch(() => {});
  });
  let declares = 0;
  let failNext = false;
  // Nothing exists until the declaration runs: an exchange, and a queue bound to it. A publish sent
  // before it would fail (no exchange) or be returned (no queue yet).
  const declaration: Declaration = {
    declare: async (channel) => {
      declares += 1;
      await sleep(50); // still under way while the publishes after it go out
      if (failNext) {
        failNext = false;
        throw new Error('test: the declaration failed');
      }
      await channel.assertExchange(name, 'topic', { durable: false });
      await channel.assertQueue(name, { durable: false });
      await channel.bindQueue(name, name, '#');
    },
  };
  const publisher = new ConfirmPublisher(logger);
  await publisher.attach(model);
  const publish = (id: string) => publisher.publish(name, 'k', Buffer.from(id), properties(id), declaration);

  const racing = await Promise.all([publish('a1'), publish('a2'), publish('a3')]);
  t.same(
    racing.map((outcome) => outcome.routed),
    [true, true, true],
    'every publish went out after the declaration, into the queue it made',
  );
  t.equal(declares, 1, 'declared once for the three');
  t.same(await publish('a4'), { routed: true });
  t.equal(declares, 1, 'and not again on the same channel');

  await publisher.attach(model); // a new channel (as after a reconnect)
  failNext = true;
  await publish('lost').then(
    () => t.fail('published without its declaration'),
    (error: unknown) => t.type(error, BrokerUnavailableError, 'a failed declaration fails its publish'),
  );
  t.same(await publish('b1'), { routed: true }, 'the next publish declares again');
  t.equal(declares, 3, 'on the new channel: the failed declaration, then the one that held');
  t.same(await publish('b2'), { routed: true });
  t.equal(declares, 3);
  t.equal(publisher.publishesInFlight, 0);

  const bodies: string[] = [];
  for (let message = await setup.get(name); message !== false; message = await setup.get(name)) {
    bodies.push(message.content.toString());
  }
  t.same(bodies.sort(), ['a1', 'a2', 'a3', 'a4', 'b1', 'b2']);
});
