// The DDL docs/outbox.md shows for teams' own migrations is the one the sidecar runs.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { channelOf, ddl, quoted } from './table.ts';

t.test('docs/outbox.md shows the DDL the sidecar runs', async (t) => {
  const docs = readFileSync(new URL('../../../docs/outbox.md', import.meta.url), 'utf8');
  t.ok(docs.includes(ddl('outrigger_outbox').trim()), 'the CREATE statements, as they are in table.ts');
});

t.test('names: quoted per part; the channel is the bare table name', async (t) => {
  t.equal(quoted('outrigger_outbox'), '"outrigger_outbox"');
  t.equal(quoted('sales.outbox'), '"sales"."outbox"');
  t.equal(channelOf('sales.outbox'), 'outbox');
  t.match(ddl('sales.outbox'), /CREATE OR REPLACE FUNCTION "sales"\."outbox_notify"\(\)/);
  t.match(ddl('sales.outbox'), /EXECUTE FUNCTION "sales"\."outbox_notify"\('outbox'\)/);
});
