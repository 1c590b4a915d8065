// The outbox relay (docs/outbox.md): the app writes its business rows and the
// messages they cause in one PostgreSQL transaction; the sidecar publishes the
// messages once committed, and deletes each row once the broker confirmed it.
import { z } from 'zod';
import { duration, positiveInt } from './fields.ts';

/** An unquoted PostgreSQL name: lower case, as the server folds unquoted names, at most 63 bytes. */
const IDENTIFIER = '[a-z_][a-z0-9_]{0,62}';
const TABLE_PATTERN = new RegExp(`^(${IDENTIFIER}\\.)?${IDENTIFIER}$`);

export const OutboxSchema = z.strictObject({
  url: z
    .string({ error: 'required: the database, as postgres://user:password@host:5432/db (or OUTRIGGER_OUTBOX_URL)' })
    .regex(/^postgres(ql)?:\/\/[^\s]+$/, { error: 'expected a postgres:// or postgresql:// URL' })
    .describe('The database; with a password, better set through OUTRIGGER_OUTBOX_URL from a Secret'),
  table: z
    .string()
    .regex(TABLE_PATTERN, {
      error: 'expected a table name, optionally with its schema (app.outbox): lower case letters, digits and "_"',
    })
    .default('outrigger_outbox')
    .describe('The outbox table, optionally schema-qualified'),
  createTable: z
    .boolean()
    .default(true)
    .describe('Create the table and its notify trigger at startup when the table does not exist'),
  batchSize: positiveInt()
    .max(1000, { error: 'expected at most 1000' })
    .default(100)
    .describe('Rows taken, published and deleted in one transaction'),
  pollInterval: duration()
    .refine((ms) => ms >= 100, { error: 'expected at least 100ms' })
    .prefault('5s')
    .describe('How often the table is read when no notification came (NOTIFY wakes the relay at once)'),
});

export type OutboxConfig = z.output<typeof OutboxSchema>;
