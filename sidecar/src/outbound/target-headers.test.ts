// Configured headers: one map, made again only when a secret file's value changes.
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { TargetSchema } from '../config/target.ts';
import { TargetHeaders } from './target-headers.ts';

t.test('a rotated secret file is picked up; until then the map is the same one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'outrigger-headers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'api-key');
  writeFileSync(file, 'key-one\n');
  const target = TargetSchema.parse({
    name: 'api',
    baseUrl: 'http://127.0.0.1:1',
    headers: { 'X-Api-Key': { secretFile: file }, 'x-client': { value: 'outrigger' } },
  });
  const errors: [string, string][] = [];
  const { headers } = TargetHeaders.resolve(target, 'targets[0]', {}, (name, code) => errors.push([name, code]));
  if (headers === undefined) throw new Error('not resolved');
  const start = Date.now();

  const first = headers.current(start);
  t.same(first, { 'x-client': 'outrigger', 'x-api-key': 'key-one' });
  writeFileSync(file, 'key-two\n');
  t.equal(headers.current(start + 1_000), first, 'younger than 2 s: the same map, the file not read');
  t.same(first, { 'x-client': 'outrigger', 'x-api-key': 'key-one' });

  const rotated = headers.current(start + 2_000);
  t.same(rotated, { 'x-client': 'outrigger', 'x-api-key': 'key-two' }, 'the rotated value');
  t.not(rotated, first, 'in a new map');
  t.same(first['x-api-key'], 'key-one', 'the map given before is left as it was');
  t.equal(headers.current(start + 4_000), rotated, 'read again, unchanged: the same map');

  unlinkSync(file);
  t.equal(headers.current(start + 6_000), rotated, 'a file that cannot be read keeps its last value');
  t.same(errors, [['x-api-key', 'ENOENT']], 'reported by name and code, never the value');
});
