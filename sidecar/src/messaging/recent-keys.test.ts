import t from 'tap';
import { RecentKeys } from './recent-keys.ts';

const keysOf = (keys: RecentKeys<number>, names: string[]) => names.filter((name) => keys.get(name) !== undefined);

t.test('a key is remembered for its window; setting it again starts the window over', async (t) => {
  let now = 0;
  const keys = new RecentKeys<number>({ windowMs: 1_000, maxKeys: 10, now: () => now });
  keys.set('a', 1);
  keys.set('b', 2);
  now = 500;
  keys.set('a', 10); // a new window, to 1,500
  now = 1_000;
  t.same(keysOf(keys, ['a', 'b']), ['a'], 'b is past its window');
  keys.set('c', 3); // b's entry goes; a's first one is passed over, not forgetting the new a
  t.equal(keys.size, 2);
  t.equal(keys.get('a'), 10);
  now = 1_500;
  keys.set('d', 4);
  t.same(keysOf(keys, ['a', 'c', 'd']), ['c', 'd'], 'a, set again at 500, is past its window at 1,500');
  t.equal(keys.size, 2);
});

t.test('at most maxKeys: the oldest go first, even within the window', async (t) => {
  const keys = new RecentKeys<number>({ windowMs: 60_000, maxKeys: 3, now: () => 0 });
  for (const [index, name] of ['a', 'b', 'c', 'd', 'e'].entries()) keys.set(name, index);
  t.equal(keys.size, 3);
  t.same(keysOf(keys, ['a', 'b', 'c', 'd', 'e']), ['c', 'd', 'e']);
  keys.set('c', 20); // now the newest
  keys.set('f', 5);
  t.same(keysOf(keys, ['c', 'd', 'e', 'f']), ['c', 'e', 'f'], 'd went, the c set again stayed');
});

t.test('forget takes a key out only while it still holds that value', async (t) => {
  const keys = new RecentKeys<number>({ windowMs: 60_000, maxKeys: 3, now: () => 0 });
  keys.set('a', 1);
  keys.set('a', 2);
  keys.forget('a', 1);
  t.equal(keys.get('a'), 2, 'an earlier value does not forget the new one');
  keys.forget('a', 2);
  t.equal(keys.get('a'), undefined);
  t.equal(keys.size, 0);
});

t.test('churning far past maxKeys keeps it, and the newest keys', async (t) => {
  const keys = new RecentKeys<number>({ windowMs: 60_000, maxKeys: 100, now: () => 0 });
  for (let index = 0; index < 50_000; index++) keys.set(`k${index}`, index);
  t.equal(keys.size, 100);
  t.equal(keys.get('k49999'), 49_999);
  t.equal(keys.get('k49900'), 49_900);
  t.equal(keys.get('k49899'), undefined);
});
