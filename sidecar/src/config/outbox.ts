// The outbox relay (docs/outbox.md): the app writes its business rows and the
// messages they cause in one PostgreSQL transaction; the sidecar publishes the
// messages once committed, and deletes each row once the broker confirmed it.
import { z } from 'zod';
import { positiveInt, timerDuration } from './fields.ts';

/**
 * Unquoted PostgreSQL names, lower case as the server folds them: a schema of at most 63 bytes, and a
 * table of at most 55, so that the names of its indexes and function (`<table>_pending`, `<table>_parked`,
 * `<table>_notify`) fit in 63 too.
 */
const TABLE_PATTERN = /^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,54}$/;

export const OutboxSchema = z.strictObject({
  url: z
    .string({ error: 'required: the database, as postgres://user:password@host:5432/db (or OUTRIGGER_OUTBOX_URL)' })
    .regex(/^postgres(ql)?:\/\/[^\s]+$/, { error: 'expected a postgres:// or postgresql:// URL' })
    .describe('The database; with a password, better set through OUTRIGGER_OUTBOX_URL from a Secret'),
  table: z
    .string()
    .regex(TABLE_PATTERN, {
      error:
        'expected a table name (at most 55 characters), optionally with its schema (app.outbox): lower case letters, digits and "_"',
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
  unroutable: z
    .enum(['park', 'delete'])
    .default('park')
    .describe('A row whose message no queue was bound to take: parked (to send again later) or deleted'),
  pollInterval: timerDuration()
    .refine((ms) => ms >= 100, { error: 'expected at least 100ms' })
    .prefault('5s')
    .describe('How often the table is read when no notification came (NOTIFY wakes the relay at once)'),
});

export type OutboxConfig = z.output<typeof OutboxSchema>;
