// A real sidecar in the test's own process (real ports, real broker), for
// suites that make many requests; and a plain amqplib connection to look at
// what reached the broker.
import { type Channel, type ChannelModel, connect, type GetMessage } from 'amqplib';
import type { Test } from 'tap';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Sidecar, type SidecarAddresses } from '../../src/sidecar.ts';
import { createLogger, type Logger } from '../../src/telemetry/logger.ts';
import { testEnv } from './sidecar-process.ts';
import { until } from './wait.ts';

export const BROKER_URL = process.env.OUTRIGGER_TEST_BROKER_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export async function startInProcess(
  t: Test,
  input: Partial<ConfigInput> & { appId: string },
  {
    waitForBroker = true,
    logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'),
    env,
  }: { waitForBroker?: boolean; logger?: Logger; env?: NodeJS.ProcessEnv } = {},
): Promise<{ sidecar: Sidecar } & SidecarAddresses> {
  const config = parseConfig({
    broker: { url: BROKER_URL },
    ...input,
    // Free ports, on loopback: the ops port would listen on 0.0.0.0 unless told (the app API's default is localhost).
    http: { ...input.http, port: 0 },
    ops: { host: '127.0.0.1', ...input.ops, port: 0 },
  });
  const sidecar = await Sidecar.create(config, { logger, env: env ?? testEnv() });
  const addresses = await sidecar.start();
  t.teardown(() => sidecar.stop());
  if (waitForBroker) await until('the broker connection', () => sidecar.broker.state === 'connected');
  return { sidecar, ...addresses };
}

/** A channel of the test's own, closed at the end of the test. */
export async function inspect(t: Test): Promise<Channel> {
  const connection: ChannelModel = await connect(BROKER_URL);
  t.teardown(() => connection.close().catch(() => {}));
  return connection.createChannel();
}

/** A fresh queue bound to `topic`'s exchange with '#', deleted at the end of the test. */
export async function queueOn(t: Test, channel: Channel, topic: string): Promise<string> {
  await channel.assertExchange(topic, 'topic', { durable: true });
  const { queue } = await channel.assertQueue('', { exclusive: true });
  await channel.bindQueue(queue, topic, '#');
  t.teardown(() => channel.deleteQueue(queue).catch(() => {}));
  return queue;
}

/**
 * Deletes each subscription queue (`<group>:<topic>`) and its dead-letter queue
 * when the test ends, on a connection of its own. Teardowns run last-registered
 * first: register this before starting the sidecars, so they stop before the
 * queues go and nothing declares them again.
 */
export function deleteQueuesAtEnd(t: Test, ...queues: string[]): void {
  t.teardown(async () => {
    const connection = await connect(BROKER_URL);
    try {
      const channel = await connection.createChannel();
      for (const queue of queues.flatMap((name) => [name, `${name}:dlq`])) await channel.deleteQueue(queue);
    } finally {
      await connection.close().catch(() => {});
    }
  });
}

/** Every message waiting in `queue`, taken off it (acked). */
export async function drain(channel: Channel, queue: string): Promise<GetMessage[]> {
  const messages: GetMessage[] = [];
  for (;;) {
    const message = await channel.get(queue, { noAck: true });
    if (message === false) return messages;
    messages.push(message);
  }
}

let counter = 0;
/** A topic name no other test uses. */
export const uniqueTopic = (name: string) => `test.${name}.${process.pid}.${Date.now()}.${counter++}`;
