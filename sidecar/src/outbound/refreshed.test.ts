import t from 'tap';
import { Refreshed } from './refreshed.ts';

t.test('made again once older than 2 s; a failure keeps the last good value and says why', async (t) => {
  const made: string[] = [];
  const errors: unknown[] = [];
  let next: () => string = () => 'two';
  const value = new Refreshed(
    'one',
    (previous) => {
      made.push(previous);
      return next();
    },
    (error) => errors.push(error),
    1_000,
  );
  t.equal(value.current(2_999), 'one', 'younger than 2 s: as it was');
  t.same(made, []);
  t.equal(value.current(3_000), 'two', 'then made again, from the previous value');
  t.same(made, ['one']);
  t.equal(value.current(4_999), 'two', 'and kept for 2 s more');

  next = () => {
    throw new Error('unusable');
  };
  t.equal(value.current(5_000), 'two', 'a failure keeps the last good value');
  t.match(errors, [{ message: 'unusable' }]);
  t.equal(value.current(6_999), 'two', 'and is not tried again before 2 s');
  t.equal(errors.length, 1);
  next = () => 'three';
  t.equal(value.current(7_000), 'three', 'then it is');
});
