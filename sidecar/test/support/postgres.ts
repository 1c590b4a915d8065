// The local PostgreSQL (scripts/bootstrap/services.sh starts it) for outbox
// tests: a client of the test's own, and outbox tables no other test uses,
// dropped when the test ends.
import pg from 'pg';
import type { Test } from 'tap';
import { dropDdl, quoted } from '../../src/outbox/table.ts';

export const DATABASE_URL =
  process.env.OUTRIGGER_TEST_DATABASE_URL ?? 'postgres://outrigger:outrigger@127.0.0.1:5432/outrigger';

/**
 * The same database as `outrigger_limited`, a role with no rights of its own (services.sh makes it):
 * tests grant it what they mean it to have on their tables.
 */
export const LIMITED_DATABASE_URL =
  process.env.OUTRIGGER_TEST_LIMITED_DATABASE_URL ??
  'postgres://outrigger_limited:outrigger_limited@127.0.0.1:5432/outrigger';
export const LIMITED_ROLE = new URL(LIMITED_DATABASE_URL).username;

/** A connected client, closed when the test ends. */
export async function database(t: Test, url = DATABASE_URL): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {}); // a server restart mid-test: the test sees it on its next query
  await client.connect();
  t.teardown(() => client.end().catch(() => {}));
  return client;
}

let counter = 0;
/**
 * A table name no other test uses (in `schema`, when set); the table and its trigger function are
 * dropped when the test ends. Register it before starting sidecars:
 * teardowns run last-registered first, so the relays stop before their table goes.
 */
export function uniqueTable(t: Test, client: pg.Client, { schema }: { schema?: string } = {}): string {
  const name = `test_outbox_${process.pid}_${Date.now() % 1_000_000}_${counter++}`;
  const table = schema === undefined ? name : `${schema}.${name}`;
  t.teardown(() => client.query(dropDdl(table)).catch(() => {}));
  return table;
}

export interface OutboxInsert {
  topic: string;
  payload: string | Buffer;
  id?: string;
  contentType?: string;
  headers?: unknown;
  /** Seconds from now. */
  deliverIn?: number;
}

/** Inserts rows as an app would, in the client's current transaction (or its own). */
export async function insertRows(client: pg.ClientBase, table: string, rows: OutboxInsert[]): Promise<void> {
  for (const row of rows) {
    await client.query(
      `INSERT INTO ${quoted(table)} (id, topic, payload, content_type, headers, deliver_at)
       VALUES (COALESCE($1, gen_random_uuid()::text), $2, $3, COALESCE($4, 'application/json'), COALESCE($5::jsonb, '{}'),
               CASE WHEN $6::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $6::float8) END)`,
      [
        row.id ?? null,
        row.topic,
        typeof row.payload === 'string' ? Buffer.from(row.payload) : row.payload,
        row.contentType ?? null,
        row.headers === undefined ? null : JSON.stringify(row.headers),
        row.deliverIn ?? null,
      ],
    );
  }
}
