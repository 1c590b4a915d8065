import t from 'tap';
import { CappedMap } from './capped-map.ts';

const keysOf = (map: CappedMap<number>, keys: string[]) => keys.filter((key) => map.get(key) !== undefined);

t.test('at most `max` entries: the one added first is forgotten first', async (t) => {
  const map = new CappedMap<number>(3);
  for (const [index, key] of ['a', 'b', 'c', 'd', 'e'].entries()) map.set(key, index);
  t.equal(map.size, 3);
  t.same(keysOf(map, ['a', 'b', 'c', 'd', 'e']), ['c', 'd', 'e']);
});

t.test('setting a key that is there keeps its place; one deleted and set again is the newest', async (t) => {
  const map = new CappedMap<number>(3);
  map.set('a', 1);
  map.set('b', 2);
  map.set('c', 3);
  map.set('a', 10); // still the oldest
  map.set('d', 4);
  t.same(keysOf(map, ['a', 'b', 'c', 'd']), ['b', 'c', 'd'], 'a went first, though set again');
  map.delete('b');
  map.set('b', 20); // now the newest: its old place in line must not forget it
  map.set('e', 5);
  t.same(keysOf(map, ['b', 'c', 'd', 'e']), ['b', 'd', 'e'], 'c went, the new b stayed');
  t.equal(map.get('b'), 20);
});

t.test('churning far past the cap keeps it, and the newest keys', async (t) => {
  const map = new CappedMap<number>(100);
  for (let index = 0; index < 50_000; index++) map.set(`k${index}`, index);
  t.equal(map.size, 100);
  t.equal(map.get('k49999'), 49_999);
  t.equal(map.get('k49900'), 49_900);
  t.equal(map.get('k49899'), undefined);
});

t.test('a cap must be a whole number of at least 1', async (t) => {
  t.throws(() => new CappedMap(0), RangeError);
  t.throws(() => new CappedMap(1.5), RangeError);
});
