import t from 'tap';
import { backoffMs, parseRetryAfter } from './backoff.ts';
import { Inbox } from './inbox.ts';
import { type PushResult, verdictOf } from './outcome.ts';

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
