// A token file is read again once its copy is a minute old (the kubelet
// rotates bound ServiceAccount tokens), and a failed read keeps the last token.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FileToken } from './token-source.ts';

const dir = mkdtempSync(join(tmpdir(), 'outrigger-token-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('read at once, then again when older than a minute', async (t) => {
  const path = join(dir, 'rotated');
  writeFileSync(path, 'first\n');
  let now = 1_000_000;
  const token = new FileToken(path, { now: () => now });
  t.equal(await token.token(), 'first');
  writeFileSync(path, 'second\n');
  now += 59_000;
  t.equal(await token.token(), 'first', 'a copy younger than a minute is used as it is');
  now += 1_000;
  const [a, b] = await Promise.all([token.token(), token.token()]);
  t.same([a, b], ['second', 'second'], 'read again, once for both');
});

t.test('a file that cannot be read later keeps the last token', async (t) => {
  const path = join(dir, 'vanishing');
  writeFileSync(path, 'kept');
  let now = 0;
  const token = new FileToken(path, { now: () => now });
  rmSync(path);
  now += 60_000;
  t.equal(await token.token(), 'kept');
  writeFileSync(path, '   ');
  now += 60_000;
  t.equal(await token.token(), 'kept', 'nor does an empty one replace it');
  writeFileSync(path, 'back');
  now += 60_000;
  t.equal(await token.token(), 'back');
});

t.test('a file missing or empty at the start throws', async (t) => {
  t.throws(() => new FileToken(join(dir, 'absent')), { code: 'ENOENT' });
  writeFileSync(join(dir, 'empty'), '\n');
  t.throws(() => new FileToken(join(dir, 'empty')), /empty is empty/);
});
