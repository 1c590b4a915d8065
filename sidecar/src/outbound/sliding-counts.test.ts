// Sliding counts: a window of any length in a bounded number of buckets, and no window of no length.
import t from 'tap';
import { MAX_BUCKETS, SlidingCounts } from './sliding-counts.ts';

const DAY = 86_400_000;

t.test('a window of 0 ms (or none) is refused, not a lifetime count', async (t) => {
  for (const windowMs of [0, -1_000, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => new SlidingCounts(1, { windowMs, buckets: 5 }), RangeError, `window ${windowMs}`);
  }
  t.throws(() => new SlidingCounts(1, { windowMs: 1_000, buckets: 0 }), RangeError, 'no buckets');
});

t.test('a year-long window is kept in at most MAX_BUCKETS buckets, and still forgets', async (t) => {
  let now = 0;
  const window = 365 * DAY;
  const counts = new SlidingCounts(2, { windowMs: window, buckets: window / 1_000, now: () => now });
  t.equal(counts.buckets, MAX_BUCKETS, 'not one bucket per second');
  counts.add(0);
  now = window / 2;
  counts.add(1);
  t.equal(counts.sum(0), 1, 'within the window');
  now = window + window / MAX_BUCKETS;
  t.equal(counts.sum(0), 0, 'the first count left the window');
  t.equal(counts.sum(1), 1, 'the second has not');
  now = 10 * window;
  t.equal(counts.sum(1), 0, 'after a long quiet spell nothing is left');
});

t.test('a short window keeps the buckets asked for', async (t) => {
  let now = 0;
  const counts = new SlidingCounts(1, { windowMs: 10_000, buckets: 10, now: () => now });
  t.equal(counts.buckets, 10);
  counts.add(0);
  now = 9_999;
  t.equal(counts.sum(0), 1);
  now = 10_000;
  t.equal(counts.sum(0), 0);
});
