// The bulkhead: slots up to maxConcurrent, a line up to maxQueue served in order, leaving it when the app goes away.
import t from 'tap';
import { CallAborted } from './attempt-result.ts';
import { Bulkhead } from './bulkhead.ts';

t.test('slots are taken up to maxConcurrent; waiters get them in arrival order', async (t) => {
  const bulkhead = new Bulkhead(2, 2);
  t.ok(bulkhead.tryTake());
  t.ok(bulkhead.tryTake());
  t.notOk(bulkhead.tryTake(), 'all slots held');
  const order: string[] = [];
  const first = bulkhead.wait(new AbortController().signal)?.then(() => order.push('first'));
  const second = bulkhead.wait(new AbortController().signal)?.then(() => order.push('second'));
  t.equal(bulkhead.wait(new AbortController().signal), undefined, 'the line is full');
  t.equal(bulkhead.size, 4);
  t.equal(bulkhead.queued, 2, 'two in line');
  bulkhead.release();
  await first;
  t.equal(bulkhead.queued, 1, 'one left the line for the slot');
  t.same(order, ['first'], 'a released slot goes to the first in line');
  bulkhead.release();
  await second;
  t.same(order, ['first', 'second']);
  t.equal(bulkhead.size, 2, 'the slots passed on, none freed');
  bulkhead.release();
  bulkhead.release();
  t.equal(bulkhead.size, 0);
  t.ok(bulkhead.tryTake(), 'free again');
});

t.test('a waiter whose signal aborts leaves the line with CallAborted', async (t) => {
  const bulkhead = new Bulkhead(1, 5);
  t.ok(bulkhead.tryTake());
  const gone = new AbortController();
  const leaving = bulkhead.wait(gone.signal);
  const staying = bulkhead.wait(new AbortController().signal);
  t.equal(bulkhead.size, 3);
  gone.abort();
  await t.rejects(leaving as Promise<void>, CallAborted);
  t.equal(bulkhead.size, 2, 'it left the line');
  t.equal(bulkhead.queued, 1);
  bulkhead.release();
  await staying;
  t.equal(bulkhead.size, 1, 'the slot went to the one still waiting');
  const already = new AbortController();
  already.abort();
  await t.rejects(bulkhead.wait(already.signal) as Promise<void>, CallAborted, 'an aborted signal does not queue');
  t.equal(bulkhead.size, 1);
});

t.test('a queue of zero refuses at once when the slots are held', async (t) => {
  const bulkhead = new Bulkhead(1, 0);
  t.ok(bulkhead.tryTake());
  t.equal(bulkhead.wait(new AbortController().signal), undefined);
});
