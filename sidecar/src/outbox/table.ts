// The outbox table: its DDL (created when missing, with `createTable`) and
// the statements the relay runs on it. docs/outbox.md shows the same DDL for
// teams that keep it in their own migrations.
import type { ClientBase } from 'pg';

/** The table's name, quoted for SQL (`"app"."outbox"`); the config allows only plain lower-case names. */
export const quoted = (table: string): string =>
  table
    .split('.')
    .map((part) => `"${part}"`)
    .join('.');

/**
 * The LISTEN channel: the table's name without its schema (a channel name is at most 63 bytes, as a
 * table's name is). Outboxes of one name in two schemas wake each other's relays: a pass too many, no more.
 */
export const channelOf = (table: string): string => table.split('.').pop() as string;

/** The notify function's name, next to its table (same schema). */
function notifyFunction(table: string): string {
  const parts = table.split('.');
  const name = `${parts.pop()}_notify`;
  return quoted([...parts, name].join('.'));
}

/** DROP statements for what ddl() creates (the trigger and the index go with the table). */
export const dropDdl = (table: string): string =>
  `DROP TABLE IF EXISTS ${quoted(table)}; DROP FUNCTION IF EXISTS ${notifyFunction(table)}();`;

/**
 * CREATE statements for the table, its indexes of pending rows (the passes') and of parked ones (their
 * count, and operators looking at them), and its notify trigger.
 */
export function ddl(table: string): string {
  const t = quoted(table);
  const bare = table.split('.').pop() as string;
  const fn = notifyFunction(table);
  return `
CREATE TABLE ${t} (
  seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id           text NOT NULL DEFAULT gen_random_uuid()::text,
  topic        text NOT NULL,
  payload      bytea NOT NULL,
  content_type text NOT NULL DEFAULT 'application/json',
  headers      jsonb NOT NULL DEFAULT '{}'::jsonb,
  deliver_at   timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  parked_at    timestamptz,
  last_error   text
);
CREATE INDEX "${bare}_pending" ON ${t} (seq) WHERE parked_at IS NULL;
CREATE INDEX "${bare}_parked" ON ${t} (seq) WHERE parked_at IS NOT NULL;
CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify(TG_ARGV[0], '');
  RETURN NULL;
END $$;
CREATE TRIGGER "${bare}_notify" AFTER INSERT ON ${t}
  FOR EACH STATEMENT EXECUTE FUNCTION ${fn}('${channelOf(table)}');
`;
}

/** The rights a pass needs that the relay's user lacks: a pass must not publish what it cannot delete or park. */
export async function missingPrivileges(client: ClientBase, table: string): Promise<string[]> {
  const missing: string[] = [];
  // One at a time: has_table_privilege with a list is true when any one of them is held.
  for (const privilege of ['SELECT', 'UPDATE', 'DELETE']) {
    const { rows } = await client.query<{ ok: boolean }>('SELECT has_table_privilege($1, $2) AS ok', [
      quoted(table),
      privilege,
    ]);
    if (rows[0]?.ok !== true) missing.push(privilege);
  }
  return missing;
}

/**
 * Creates the table unless it exists. Checked first, rather than `IF NOT EXISTS`: creating needs
 * rights on the schema that a relay reading a table its app made may not have. Two sidecars
 * starting at once both find it missing: the one whose CREATE loses the race waits for the
 * other's transaction, fails on the name, and finds the table there.
 */
export async function ensureTable(client: ClientBase, table: string): Promise<'created' | 'exists'> {
  if (await tableExists(client, table)) return 'exists';
  try {
    await client.query(`BEGIN; ${ddl(table)} COMMIT;`);
    return 'created';
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    if (await tableExists(client, table)) return 'exists';
    throw error;
  }
}

export async function tableExists(client: ClientBase, table: string): Promise<boolean> {
  const { rows } = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::text AS oid', [quoted(table)]);
  return rows[0]?.oid !== null && rows[0]?.oid !== undefined;
}

/** The columns the relay reads of a pending row. */
export interface OutboxRow {
  seq: string;
  id: string | null;
  topic: string | null;
  payload: Buffer | null;
  content_type: string | null;
  headers: unknown;
  /** Until `deliver_at`, on the database's clock (not the sidecar's); 0 when past, null without one. */
  delay_ms: number | null;
  created_at: Date;
}

/** Statements on the table, its name quoted once. */
export class OutboxStatements {
  /** The oldest pending rows no other relay holds, locked until the transaction ends. */
  readonly take: string;
  /** The oldest pending row's age, while no pass runs (the broker away). */
  readonly oldest: string;
  readonly remove: string;
  readonly park: string;
  /** How many rows are parked: read from the parked index, not the whole table. */
  readonly countParked: string;

  constructor(table: string) {
    const t = quoted(table);
    this.take = `SELECT seq, id, topic, payload, content_type, headers, created_at,
        GREATEST(0, EXTRACT(EPOCH FROM deliver_at - now()) * 1000)::float8 AS delay_ms
      FROM ${t} WHERE parked_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`;
    this.oldest = `SELECT created_at FROM ${t} WHERE parked_at IS NULL ORDER BY seq LIMIT 1`;
    this.remove = `DELETE FROM ${t} WHERE seq = ANY($1::bigint[])`;
    this.park = `UPDATE ${t} AS o SET parked_at = now(), last_error = p.why
      FROM unnest($1::bigint[], $2::text[]) AS p(seq, why) WHERE o.seq = p.seq`;
    this.countParked = `SELECT count(*)::float8 AS n FROM ${t} WHERE parked_at IS NOT NULL`;
  }
}
