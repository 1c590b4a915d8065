// The retry budget: retries stay under ratio x calls (plus the reserve) over a sliding 10 s window.
import t from 'tap';
import { RetryBudget } from './retry-budget.ts';

t.test('retries are limited to the ratio of calls', async (t) => {
  const now = 1_000_000;
  const budget = new RetryBudget(0.2, 0, { now: () => now });
  for (let i = 0; i < 50; i++) budget.recordCall();
  let granted = 0;
  for (let i = 0; i < 100; i++) if (budget.tryRetry()) granted++;
  t.equal(granted, 10);
});

t.test('the reserve allows minPerSecond x 10 retries with no calls counted', async (t) => {
  const budget = new RetryBudget(0, 1, { now: () => 5_000 });
  let granted = 0;
  for (let i = 0; i < 100; i++) if (budget.tryRetry()) granted++;
  t.equal(granted, 10);
});

t.test('calls and retries leave the window as time passes', async (t) => {
  let now = 0;
  const budget = new RetryBudget(0.5, 0, { now: () => now });
  for (let i = 0; i < 4; i++) budget.recordCall();
  t.ok(budget.tryRetry());
  t.ok(budget.tryRetry());
  t.notOk(budget.tryRetry(), 'two retries for four calls');
  now = 5_000;
  t.notOk(budget.tryRetry(), 'still inside the window');
  now = 10_500;
  for (let i = 0; i < 2; i++) budget.recordCall();
  t.ok(budget.tryRetry(), 'the old calls and retries fell out of the window');
  t.notOk(budget.tryRetry());
});
