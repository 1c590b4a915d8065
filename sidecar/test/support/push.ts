// A sidecar with push subscriptions to a real test app, for push and
// dead-letter suites: unique names per test, the queues a test caused deleted
// at its end, and small readers for what reached the app and the broker.
import { connect } from 'amqplib';
import type { Test } from 'tap';
import type { SubscriptionInput } from '../../src/config/subscription.ts';
import type { Sidecar } from '../../src/sidecar.ts';
import type { Received, TestApp } from './app-server.ts';
import { BROKER_URL, deleteQueuesAtEnd, startInProcess, uniqueTopic } from './in-process.ts';
import { until } from './wait.ts';

let counter = 0;
/** An app id (and so a default group) no other test uses: a DNS label. */
export const uniqueAppId = (name: string) =>
  `${name}-${process.pid.toString(36)}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

/** Retries every second, three attempts in all: fast enough for tests. */
export const FAST_RETRY = { maxAttempts: 3, initial: '1s', multiplier: 1, jitter: 0 } as const;

export interface PushSetup {
  sidecar: Sidecar;
  api: string;
  ops: string;
  appId: string;
  topic: string;
  /** `<group>:<topic>` of the first subscription. */
  queue: string;
  deadLetterQueue: string;
  /** The first subscription's name. */
  name: string;
}

/**
 * A sidecar for `app` with one push subscription `push` on a fresh topic
 * (route `/events`, fast retries), merged with `subscription`. Its queues are
 * deleted at the end of the test, after the sidecar stopped. Waits until the
 * subscription consumes, unless `waitForConsuming` is false.
 */
export async function startPush(
  t: Test,
  app: TestApp,
  {
    name = 'push',
    appId = uniqueAppId('push'),
    topic = uniqueTopic('push'),
    subscription = {},
    waitForConsuming = true,
  }: {
    name?: string;
    appId?: string;
    topic?: string;
    subscription?: Partial<SubscriptionInput>;
    waitForConsuming?: boolean;
  } = {},
): Promise<PushSetup> {
  const sub = { name, topic, route: '/events', retry: FAST_RETRY, ...subscription };
  const group = sub.group ?? appId;
  const queue = `${group}:${topic}`;
  const deadLetterQueue = `${queue}:dlq`;
  deleteQueuesAtEnd(t, queue);
  const started = await startInProcess(t, {
    appId,
    // Checked once at start (every second while down), so an app that stops mid-test is not noticed.
    app: { port: app.port, healthInterval: '1h' },
    subscriptions: [sub],
  });
  if (waitForConsuming) {
    await until(`${name} consuming`, () => started.sidecar.subscriptions.get(name)?.consumer.state === 'consuming');
  }
  return { ...started, appId, topic, queue, deadLetterQueue, name };
}

/** Ready messages in `queue` (the sidecar must have stopped for unacked ones to count). */
/** What the broker says of a queue now: messages ready, and consumers. */
export async function queueCounts(queue: string): Promise<{ messageCount: number; consumerCount: number }> {
  const connection = await connect(BROKER_URL);
  try {
    const channel = await connection.createChannel();
    const { messageCount, consumerCount } = await channel.checkQueue(queue);
    return { messageCount, consumerCount };
  } finally {
    await connection.close().catch(() => {});
  }
}

export const messageCount = async (queue: string): Promise<number> => (await queueCounts(queue)).messageCount;

export async function publish(
  api: string,
  topic: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ id: string; routed: boolean }> {
  const response = await fetch(`${api}/v1/publish/${topic}`, { method: 'POST', body, headers });
  if (response.status !== 202) throw new Error(`publish answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as { id: string; routed: boolean };
}

export const attemptOf = (request: Received) => Number(request.headers['outrigger-attempt']);
export const idOf = (request: Received) => String(request.headers['ce-id']);

/** What the app received for message `id`, in order. */
export const requestsFor = (app: TestApp, id: string) => app.received.filter((request) => idOf(request) === id);

/** The sidecar's count of deliveries settled with `outcome` on `subscription`. */
export async function deliveries(sidecar: Sidecar, subscription: string, outcome: string): Promise<number> {
  const { values } = await sidecar.metrics.deliveries.get();
  return values
    .filter((value) => value.labels.subscription === subscription && value.labels.outcome === outcome)
    .reduce((sum, value) => sum + value.value, 0);
}
