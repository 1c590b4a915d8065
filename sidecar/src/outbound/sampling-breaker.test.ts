// The sampling breaker: a failure ratio over a sliding window, once there are enough attempts to judge.
import { CircuitState } from 'cockatiel';
import t from 'tap';
import { SamplingBreaker } from './sampling-breaker.ts';

const { Closed, HalfOpen } = CircuitState;

t.test('attempts spread out over more than the window never add up to enough to judge', async (t) => {
  let now = 0;
  // 5 s, at least 1 attempt per second: 5 attempts in the window before it may open.
  const breaker = new SamplingBreaker({ failureRatio: 0.5, window: 5_000, minimumRps: 1 }, () => now);
  for (let i = 0; i < 20; i++) {
    t.notOk(breaker.failure(Closed), `failure at ${now} ms: at most 4 in any 5 s`);
    now += 1_300;
  }
});

t.test('opens over the ratio; a trial that succeeds starts the window afresh', async (t) => {
  let now = 10_000;
  const breaker = new SamplingBreaker({ failureRatio: 0.5, window: 5_000, minimumRps: 1 }, () => now);
  for (let i = 0; i < 3; i++) breaker.success(Closed);
  t.notOk(breaker.failure(Closed), '1 of 4: too few');
  t.notOk(breaker.failure(Closed), '2 of 5: under half');
  t.notOk(breaker.failure(Closed), '3 of 6: not over half');
  t.ok(breaker.failure(Closed), '4 of 7');
  now += 100;
  t.ok(breaker.failure(HalfOpen), 'a failed trial opens it again');
  breaker.success(HalfOpen);
  for (let i = 0; i < 3; i++) t.notOk(breaker.failure(Closed), `the trial and ${i + 1} failures: too few`);
  t.ok(breaker.failure(Closed), 'the trial and 4 failures: only what came after it counts');
});

t.test('a long window: failures are forgotten once it has passed', async (t) => {
  let now = 0;
  const window = 600_000; // 10 minutes, at least 1 attempt per second: 600 attempts before it may open
  const breaker = new SamplingBreaker({ failureRatio: 0.5, window, minimumRps: 1 }, () => now);
  for (let i = 0; i < 599; i++) breaker.failure(Closed);
  now = window + 10_000; // the 599 failures left the window
  for (let i = 0; i < 599; i++) breaker.success(Closed);
  t.notOk(breaker.failure(Closed), '1 failure in 600: the old ones are gone');
});
