import t from 'tap';
import { EvictionQueue } from './eviction-queue.ts';

const entry = (key: string) => ({ key });

t.test('the oldest goes first; an entry set again or deleted is passed over', async (t) => {
  const queue = new EvictionQueue<{ key: string }>();
  for (const key of ['a', 'b', 'c']) queue.push(entry(key));
  queue.push(entry('a')); // set again: last in line now
  queue.delete('b');
  t.equal(queue.size, 2);
  t.equal(queue.queued, 4, 'the superseded and the deleted entries are still in line');
  queue.dropOldest(); // the first 'a', no longer the key's: forgets nothing
  t.ok(queue.get('a'));
  queue.dropOldest(); // 'b', deleted already
  queue.dropOldest(); // 'c'
  t.equal(queue.get('c'), undefined);
  t.equal(queue.oldest()?.key, 'a');
  t.equal(queue.size, 1);
});

t.test('churning through a small cap keeps the order array small, not one slot per entry ever set', async (t) => {
  const queue = new EvictionQueue<{ key: string }>();
  let largest = 0;
  for (let index = 0; index < 100_000; index++) {
    queue.push(entry(`k${index}`));
    while (queue.size > 100) queue.dropOldest();
    largest = Math.max(largest, queue.capacity);
  }
  t.equal(queue.size, 100);
  t.equal(queue.queued, 100);
  t.ok(largest <= 2 * 1024 + 100, `the array peaked at ${largest} slots for 100 entries`);
});
