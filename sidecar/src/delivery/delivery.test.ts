import t from 'tap';
import type { Delivery } from '../broker/broker.ts';
import { parseConfig } from '../config/load.ts';
import { createLogger } from '../telemetry/logger.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { httpPeer } from '../telemetry/spans.ts';
import type { AppClient } from './app-client.ts';
import { backoffMs, parseRetryAfter } from './backoff.ts';
import { Inbox } from './inbox.ts';
import { type PushResult, verdictOf } from './outcome.ts';
import { PushDispatcher } from './push-dispatcher.ts';
import { type Settler, settleFailure } from './settle.ts';

const policy = { initial: 1_000, max: 60_000, multiplier: 2, jitter: 0.2 };

t.test('the back-off grows by the multiplier up to max, less up to jitter of it', async (t) => {
  t.same(
    [1, 2, 3, 7, 8].map((attempt) => backoffMs({ ...policy, jitter: 0 }, attempt)),
    [1_000, 2_000, 4_000, 60_000, 60_000],
  );
  t.equal(
    backoffMs(policy, 3, () => 0),
    4_000,
    'no jitter drawn: the full value',
  );
  t.equal(
    backoffMs(policy, 3, () => 1),
    3_200,
    'the most jitter takes 20% off',
  );
  t.equal(
    backoffMs({ ...policy, jitter: 1 }, 3, () => 1),
    0,
    'full jitter can go to zero',
  );
});

t.test('retry-after is read as seconds or as an HTTP date', async (t) => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  t.equal(parseRetryAfter('5', now), 5_000);
  t.equal(parseRetryAfter(['3'], now), 3_000);
  t.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now), 10_000);
  t.equal(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now), 0, 'a date in the past: now');
  t.equal(parseRetryAfter(undefined, now), undefined);
  t.equal(parseRetryAfter('soon', now), undefined);
  t.equal(parseRetryAfter('-1', now), undefined);
});

t.test("the outcome table: the app's answer decides", async (t) => {
  const answered = (status: number): PushResult => ({ kind: 'answered', status });
  for (const status of [200, 201, 202, 204, 299]) t.equal(verdictOf(answered(status)).action, 'ack', `${status}`);
  for (const status of [408, 429, 500, 502, 503, 504, 599]) {
    t.equal(verdictOf(answered(status)).action, 'retry', `${status}`);
  }
  for (const status of [400, 401, 403, 404, 409, 410, 413, 415, 422, 451]) {
    t.equal(verdictOf(answered(status)).action, 'dead-letter', `${status}`);
  }
  t.match(verdictOf({ kind: 'failed', error: 'ECONNREFUSED: connect', timedOut: false }), {
    action: 'retry',
    error: /ECONNREFUSED/,
  });
  t.match(verdictOf({ kind: 'answered', status: 503, retryAfterMs: 2_000, detail: 'down' }), {
    action: 'retry',
    status: 503,
    retryAfterMs: 2_000,
    error: 'the app answered 503: down',
  });
});

t.test('the inbox remembers processed ids for its window, and at most maxIds of them', async (t) => {
  let now = 0;
  const inbox = new Inbox({ windowMs: 1_000, maxIds: 3, now: () => now });
  inbox.remember('a');
  t.ok(inbox.has('a'));
  t.notOk(inbox.has('b'));
  now = 1_000;
  t.notOk(inbox.has('a'), 'forgotten when the window ends');
  for (const id of ['b', 'c', 'd', 'e']) inbox.remember(id);
  t.equal(inbox.size, 3, 'bounded');
  t.notOk(inbox.has('b'), 'the oldest goes first');
  t.ok(inbox.has('e'));
});

t.test('remembering an id again extends its window', async (t) => {
  let now = 0;
  const inbox = new Inbox({ windowMs: 1_000, maxIds: 10, now: () => now });
  inbox.remember('a');
  now = 500;
  inbox.remember('a');
  now = 1_200;
  inbox.remember('b');
  t.ok(inbox.has('a'), 'the second remember counts');
  now = 1_600;
  inbox.remember('c');
  t.notOk(inbox.has('a'));
  t.equal(inbox.size, 2);
});

/**
 * A delivery whose next copy cannot be sent: retry and deadLetter resolve false,
 * as the broker's do when the re-publish failed and the message went back to its queue.
 */
function unforwardable(attempt: number) {
  const calls: string[] = [];
  const delivery: Delivery = {
    id: `m-${attempt}`,
    topic: 'orders.placed',
    body: Buffer.from('{}'),
    headers: {},
    attempt,
    ack: async () => {
      calls.push('ack');
    },
    release: async () => {
      calls.push('release');
    },
    retry: async () => {
      calls.push('retry');
      return false;
    },
    deadLetter: async () => {
      calls.push('deadLetter');
      return false;
    },
  };
  return { delivery, calls };
}

/** Waits (at most 2 s) until `done()`; throws if it never is. */
async function settled(done: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await done()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error('not settled within 2 s');
}

const settler: Settler = {
  retry: { initial: 1_000, max: 60_000, multiplier: 2, jitter: 0, maxAttempts: 3 },
  deadLetter: true,
  maxDelayMs: 86_400_000,
};

t.test('a retry or dead letter that could not be sent is released: never acked, never counted as done', async (t) => {
  const retrying = unforwardable(1);
  t.equal(
    await settleFailure(settler, retrying.delivery, { action: 'retry', error: 'the app answered 503' }),
    'released',
  );
  t.same(retrying.calls, ['retry'], 'no ack: the message stays in its queue');

  const rejected = unforwardable(1);
  t.equal(await settleFailure(settler, rejected.delivery, { action: 'dead-letter', error: '422' }), 'released');
  t.same(rejected.calls, ['deadLetter']);

  const last = unforwardable(3);
  t.equal(
    await settleFailure(settler, last.delivery, { action: 'retry', error: 'the app answered 503' }),
    'released',
    'out of attempts, and the dead-letter queue took nothing',
  );
  t.same(last.calls, ['deadLetter']);
});

t.test('a push whose retry could not be sent counts as released, and its redelivery is pushed again', async (t) => {
  const config = parseConfig({
    appId: 'orders',
    app: { port: 8080 },
    subscriptions: [{ name: 'placed', topic: 'orders.placed', route: '/events', retry: { maxAttempts: 3 } }],
  });
  const subscription = config.subscriptions[0] as (typeof config.subscriptions)[number];
  const metrics = new Metrics({ version: 'test', appId: 'orders' });
  const inbox = new Inbox({ windowMs: 60_000, maxIds: 100 });
  const pushed: string[] = [];
  const stub = {
    peer: httpPeer('http://127.0.0.1:8080'),
    push: async () => {
      pushed.push('push');
      return { kind: 'answered', status: 503 } satisfies PushResult;
    },
  } satisfies Pick<AppClient, 'peer' | 'push'>;
  const client = stub as unknown as AppClient;
  const dispatcher = new PushDispatcher({
    subscription,
    client,
    inbox,
    settler: { retry: subscription.retry, deadLetter: subscription.deadLetter, maxDelayMs: settler.maxDelayMs },
    metrics,
    logger: createLogger('silent'),
    messageParent: 'child',
  });
  const outcomes = async () =>
    Object.fromEntries((await metrics.deliveries.get()).values.map((v) => [v.labels.outcome, v.value]));

  const first = unforwardable(1);
  dispatcher.accept(first.delivery);
  await settled(async () => (await outcomes()).released === 1);
  t.match(await outcomes(), { released: 1, retried: undefined, acked: undefined }, 'counted as released, not retried');
  t.same(first.calls, ['retry'], 'not acked');
  t.notOk(inbox.has(first.delivery.id), 'not remembered as processed');

  // The broker hands the same message out again (attempt unchanged): it is pushed, not absorbed as a duplicate.
  const again = unforwardable(1);
  dispatcher.accept(again.delivery);
  await settled(async () => (await outcomes()).released === 2);
  t.equal(pushed.length, 2, 'pushed to the app again');
  t.same(again.calls, ['retry']);
});
