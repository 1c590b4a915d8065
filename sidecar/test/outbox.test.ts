// The outbox relay against a real PostgreSQL and a real RabbitMQ: rows an app
// commits are published, with what they say, and deleted once confirmed;
// nothing rolled back is published; bad rows are parked; replicas share a
// table without publishing a row twice; the database or the broker going away
// loses nothing.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { GetMessage } from 'amqplib';
import t, { type Test } from 'tap';
import { channelOf, ddl, ensureTable as ensureOutboxTable, OutboxStatements, quoted } from '../src/outbox/table.ts';
import { BROKER_URL, drain, inspect, queueOn, startInProcess, uniqueTopic } from './support/in-process.ts';
import { KIND, startOtlpReceiver } from './support/otlp-receiver.ts';
import {
  DATABASE_URL,
  database,
  insertRows,
  LIMITED_DATABASE_URL,
  LIMITED_ROLE,
  uniqueTable,
} from './support/postgres.ts';
import { startSidecar } from './support/sidecar-process.ts';
import { startToxiproxy, type Proxy as ToxicProxy } from './support/toxiproxy.ts';
import { until } from './support/wait.ts';

async function rowCount(client: Awaited<ReturnType<typeof database>>, table: string, where = 'true') {
  const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoted(table)} WHERE ${where}`);
  return Number(rows[0]?.n);
}

/** Collects the messages reaching `queue` until `count` have arrived. */
async function collect(
  channel: Awaited<ReturnType<typeof inspect>>,
  queue: string,
  count: number,
  timeoutMs = 15_000,
): Promise<GetMessage[]> {
  const got: GetMessage[] = [];
  await until(
    `${count} messages on ${queue}`,
    async () => {
      got.push(...(await drain(channel, queue)));
      return got.length >= count;
    },
    { timeoutMs },
  );
  return got;
}

/** What most cases need: a client, a table of their own, a topic and a queue bound to it. */
async function scene(t: Test) {
  const db = await database(t);
  const table = uniqueTable(t, db);
  const topic = uniqueTopic('outbox');
  const channel = await inspect(t);
  const queue = await queueOn(t, channel, topic);
  return { db, table, topic, channel, queue };
}

/** A scene whose table holds `count` rows (ids `prefix-0`...), and the ids of the messages reaching its queue. */
async function backlog(t: Test, count: number, prefix: string) {
  const { db, table, topic, channel, queue } = await scene(t);
  const ids = Array.from({ length: count }, (_, index) => `${prefix}-${index}`);
  await ensureOutboxTable(db, table);
  await db.query(`INSERT INTO ${quoted(table)} (id, topic, payload) SELECT unnest($1::text[]), $2, '\\x7b7d'::bytea`, [
    ids,
    topic,
  ]);
  const got: string[] = [];
  await channel.consume(queue, (message) => message && got.push(message.properties.messageId as string), {
    noAck: true,
  });
  return { db, table, ids, got };
}

/** An in-process sidecar relaying `outbox.table` of the local database, once it relays. */
async function relaying(t: Test, appId: string, outbox: { table: string } & Record<string, unknown>) {
  const started = await startInProcess(t, { appId, outbox: { url: DATABASE_URL, ...outbox } });
  await until('the outbox relay', () => started.sidecar.outbox?.status.state === 'relaying');
  return started;
}

/** The relay as /readyz, /v1/metadata and /metrics show it. */
async function outboxSeen(api: string, ops: string) {
  const readiness = (await (await fetch(`${ops}/readyz`)).json()) as {
    checks: Record<string, { ok: boolean; detail: string }>;
  };
  const metadata = (await (await fetch(`${api}/v1/metadata`)).json()) as {
    outbox: { state: string; detail: string };
  };
  const metrics = await (await fetch(`${ops}/metrics`)).text();
  return {
    check: readiness.checks.outbox,
    metadata: metadata.outbox,
    connected: Number(/\noutrigger_outbox_connected (\S+)\n/.exec(metrics)?.[1]),
  };
}

t.test(
  'a committed row is published with its topic, payload, headers and id, then deleted; a rolled-back one never',
  async (t) => {
    const { db, table, topic, channel, queue } = await scene(t);
    const { api } = await relaying(t, 'outbox-basic', { table });
    const metadata = (await (await fetch(`${api}/v1/metadata`)).json()) as { outbox?: unknown };
    t.same(metadata.outbox, { table, state: 'relaying', detail: `relaying ${table}` }, 'metadata shows the relay');

    await db.query('BEGIN');
    await insertRows(db, table, [{ topic, id: 'rolled-back', payload: '{}' }]);
    await db.query('ROLLBACK');
    await db.query('BEGIN');
    await insertRows(db, table, [
      {
        topic,
        id: 'order-42-created',
        payload: '{"order":42}',
        headers: { 'ce-type': 'order.created', 'ce-source': '/orders', 'x-private': 'not carried' },
      },
      { topic, payload: Buffer.from([0, 1, 2, 255]), contentType: 'application/octet-stream' },
    ]);
    await db.query('COMMIT');

    const [first, second] = await collect(channel, queue, 2);
    t.equal(first?.properties.messageId, 'order-42-created', 'the row id is the message id');
    t.equal(first?.content.toString(), '{"order":42}');
    t.equal(first?.properties.contentType, 'application/json');
    t.equal(first?.properties.headers?.['ce-type'], 'order.created');
    t.equal(first?.properties.headers?.['ce-source'], '/orders');
    t.notOk(first?.properties.headers?.['x-private'], 'headers the publish API does not keep are not carried');
    t.equal(first?.properties.deliveryMode, 2, 'persistent');
    t.same([...(second?.content ?? [])], [0, 1, 2, 255], 'a binary payload, byte for byte');
    t.equal(second?.properties.contentType, 'application/octet-stream');
    t.match(second?.properties.messageId, /^[0-9a-f-]{36}$/, 'the default id is a UUID');
    await until('the rows deleted', async () => (await rowCount(db, table)) === 0);
    t.same(await drain(channel, queue), [], 'nothing else arrives: the rolled-back row is never published');
  },
);

t.test('an insert wakes the relay at once (NOTIFY), not at the next poll', async (t) => {
  const { db, table, topic, channel, queue } = await scene(t);
  await relaying(t, 'outbox-notify', { table, pollInterval: '10m' });
  // The first pass found the table empty; with a 10 minute poll, only the trigger's NOTIFY can wake it.
  await new Promise((resolve) => setTimeout(resolve, 200));
  await insertRows(db, table, [{ topic, id: 'woken', payload: '{}' }]);
  const got = await collect(channel, queue, 1, 10_000);
  t.equal(got[0]?.properties.messageId, 'woken');
});

t.test('a row that can never be published is parked with why; the rows after it are published', async (t) => {
  const { db, table, topic, channel, queue } = await scene(t);
  const { ops } = await relaying(t, 'outbox-park', { table });

  await insertRows(db, table, [
    { topic: 'amq.reserved', id: 'bad-topic', payload: '{}' },
    { topic, id: 'bad-headers', payload: '{}', headers: { traceparent: 42 } },
    { topic, id: 'headers-not-an-object', payload: '{}', headers: ['ce-type'] },
    { topic, id: 'x'.repeat(201), payload: '{}' },
    { topic, id: 'too-far', payload: '{}', deliverIn: 10 * 365 * 86_400 },
    { topic, id: 'good', payload: '{}' },
  ]);
  const got = await collect(channel, queue, 1);
  t.equal(got[0]?.properties.messageId, 'good');
  // Confirmed, it is on the queue before its pass commits: until then the row is still there.
  await until('the pass committed', async () => (await rowCount(db, table, "id = 'good'")) === 0);
  const { rows } = await db.query<{ id: string; last_error: string; parked: boolean }>(
    `SELECT id, last_error, parked_at IS NOT NULL AS parked FROM ${quoted(table)} ORDER BY seq`,
  );
  t.same(
    rows.map((row) => [row.id.slice(0, 25), row.parked]),
    [
      ['bad-topic', true],
      ['bad-headers', true],
      ['headers-not-an-object', true],
      ['x'.repeat(25), true],
      ['too-far', true],
    ],
    'parked rows stay in the table, the good one is gone',
  );
  t.match(rows[0]?.last_error, /topic "amq\.reserved": .*reserved/);
  t.match(rows[1]?.last_error, /headers\.traceparent: expected a string/);
  t.match(rows[2]?.last_error, /headers: expected a JSON object/);
  t.match(rows[3]?.last_error, /id: expected 1-200 characters/);
  t.match(rows[4]?.last_error, /deliver_at: the delay is longer than the \d+ days/);
  const metrics = await (await fetch(`${ops}/metrics`)).text();
  t.match(metrics, /\noutrigger_outbox_messages_total\{outcome="parked"\} 5\n/);
  t.match(metrics, /\noutrigger_outbox_messages_total\{outcome="published"\} 1\n/);

  // Mended in place and un-parked, the row goes out on the next pass.
  await db.query(`UPDATE ${quoted(table)} SET topic = $1, parked_at = NULL WHERE id = 'bad-topic'`, [topic]);
  await db.query(`NOTIFY "${channelOf(table)}"`);
  const replayed = await collect(channel, queue, 1);
  t.equal(replayed[0]?.properties.messageId, 'bad-topic');
});

t.test('outrigger_outbox_parked_rows counts the parked rows in the table, from its index', async (t) => {
  const { db, table, topic, channel, queue } = await scene(t);
  await ensureOutboxTable(db, table);
  await insertRows(db, table, [
    { topic: 'amq.reserved', id: 'parked-before-1', payload: '{}' },
    { topic: 'amq.reserved', id: 'parked-before-2', payload: '{}' },
  ]);
  await db.query(`UPDATE ${quoted(table)} SET parked_at = now(), last_error = 'parked by an earlier relay'`);
  const { ops } = await relaying(t, 'outbox-parked-rows', { table, pollInterval: '200ms' });
  const parkedRows = async () => {
    const text = await (await fetch(`${ops}/metrics`)).text();
    return Number(/\noutrigger_outbox_parked_rows (\S+)\n/.exec(text)?.[1]);
  };
  // Counted every pollInterval, at least 1 s apart.
  await until('the rows parked before the relay started counted', async () => (await parkedRows()) === 2, {
    timeoutMs: 5_000,
  });

  await insertRows(db, table, [
    { topic: 'amq.reserved', id: 'bad', payload: '{}' },
    { topic, id: 'good', payload: '{}' },
  ]);
  await collect(channel, queue, 1);
  await until('the row it parked counted', async () => (await parkedRows()) === 3, { timeoutMs: 5_000 });

  await db.query(`UPDATE ${quoted(table)} SET topic = $1, parked_at = NULL WHERE id LIKE 'parked-before-%'`, [topic]);
  await collect(channel, queue, 2);
  await until('the rows sent again no longer counted', async () => (await parkedRows()) === 1, { timeoutMs: 5_000 });

  // The count can be read from the parked index alone (the planner prefers the table while it is this small).
  await db.query('BEGIN');
  await db.query('SET LOCAL enable_seqscan = off');
  const { rows: plan } = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${new OutboxStatements(table).countParked}`);
  await db.query('COMMIT');
  t.match(plan.map((line) => line['QUERY PLAN']).join('\n'), `${table}_parked`, 'the count reads the parked index');
});

t.test('deliver_at holds the message in the broker until then', async (t) => {
  const { db, table, topic, channel, queue } = await scene(t);
  await relaying(t, 'outbox-delay', { table });

  const inserted = Date.now();
  await insertRows(db, table, [{ topic, id: 'later', payload: '{}', deliverIn: 3 }]);
  await until('the row relayed into the broker', async () => (await rowCount(db, table)) === 0);
  t.same(await drain(channel, queue), [], 'not delivered while the delay runs');
  const got = await collect(channel, queue, 1, 10_000);
  t.equal(got[0]?.properties.messageId, 'later');
  t.ok(Date.now() - inserted >= 2_900, 'not before deliver_at');
});

t.test('two relays on one table publish each row once', async (t) => {
  const { db, table, topic, channel, queue } = await scene(t);
  const outbox = { url: DATABASE_URL, table, batchSize: 20 };
  const one = await startInProcess(t, { appId: 'outbox-replica', outbox });
  const two = await startInProcess(t, { appId: 'outbox-replica', outbox });
  await until('both relays', () => [one, two].every(({ sidecar }) => sidecar.outbox?.status.state === 'relaying'));

  const ids = Array.from({ length: 600 }, (_, index) => `row-${index}`);
  for (let from = 0; from < ids.length; from += 50) {
    await db.query('BEGIN');
    await insertRows(
      db,
      table,
      ids.slice(from, from + 50).map((id) => ({ topic, id, payload: `{"id":"${id}"}` })),
    );
    await db.query('COMMIT');
  }
  const got = await collect(channel, queue, ids.length, 30_000);
  await new Promise((resolve) => setTimeout(resolve, 300));
  got.push(...(await drain(channel, queue)));
  const seen = got.map((message) => message.properties.messageId as string);
  t.equal(seen.length, ids.length, 'as many messages as rows: none twice');
  t.same(new Set(seen), new Set(ids), 'every row');
  t.equal(await rowCount(db, table), 0, 'all deleted');
  const published = await Promise.all(
    [one, two].map(async ({ ops }) => {
      const text = await (await fetch(`${ops}/metrics`)).text();
      return Number(/outrigger_outbox_messages_total\{outcome="published"\} (\d+)/.exec(text)?.[1] ?? 0);
    }),
  );
  t.equal((published[0] ?? 0) + (published[1] ?? 0), ids.length, 'the two relays published them between them');
  t.ok(
    published.every((count) => count > 0),
    `both took part (${published.join(' and ')})`,
  );
});

t.test('rows another transaction holds are skipped, not waited for, and go out once released', async (t) => {
  const { db, table, topic, channel, queue } = await scene(t);
  await ensureOutboxTable(db, table);
  await insertRows(db, table, [
    { topic, id: 'held', payload: '{}' },
    { topic, id: 'free-1', payload: '{}' },
    { topic, id: 'free-2', payload: '{}' },
  ]);
  const holder = await database(t);
  await holder.query('BEGIN');
  await holder.query(`SELECT 1 FROM ${quoted(table)} WHERE id = 'held' FOR UPDATE`);
  const relay = await relaying(t, 'outbox-locked', { table, pollInterval: '200ms' });
  const got = await collect(channel, queue, 2);
  t.same(
    got.map((message) => message.properties.messageId),
    ['free-1', 'free-2'],
    'the rows behind the held one went out while it was held',
  );
  t.equal(await rowCount(db, table), 1, 'the held row is still there');
  await holder.query('COMMIT');
  const later = await collect(channel, queue, 1);
  t.equal(later[0]?.properties.messageId, 'held', 'published once its lock was released');
  t.equal(relay.sidecar.outbox?.status.state, 'relaying');
});

t.test('a message no queue takes: its row is parked (by default) or deleted', async (t) => {
  const db = await database(t);
  const parkTable = uniqueTable(t, db);
  const deleteTable = uniqueTable(t, db);
  const nowhere = uniqueTopic('outbox-nowhere');
  const topic = uniqueTopic('outbox');
  const channel = await inspect(t);
  const queue = await queueOn(t, channel, topic);
  const parking = await startInProcess(t, {
    appId: 'outbox-unroutable',
    outbox: { url: DATABASE_URL, table: parkTable },
  });
  const deleting = await startInProcess(t, {
    appId: 'outbox-unroutable',
    outbox: { url: DATABASE_URL, table: deleteTable, unroutable: 'delete' },
  });
  await until('both relays', () =>
    [parking, deleting].every(({ sidecar }) => sidecar.outbox?.status.state === 'relaying'),
  );
  for (const table of [parkTable, deleteTable]) {
    await insertRows(db, table, [
      { topic: nowhere, id: `${table}-nowhere`, payload: '{}' },
      { topic, id: `${table}-somewhere`, payload: '{}' },
    ]);
  }
  await collect(channel, queue, 2);
  await until('the parking relay parked its row', async () => (await rowCount(db, parkTable)) === 1);
  const { rows } = await db.query<{ id: string; last_error: string; parked: boolean }>(
    `SELECT id, last_error, parked_at IS NOT NULL AS parked FROM ${quoted(parkTable)}`,
  );
  t.same(rows, [
    {
      id: `${parkTable}-nowhere`,
      last_error: `unroutable: no queue is bound to topic ${nowhere}`,
      parked: true,
    },
  ]);
  await until('the deleting relay deleted both', async () => (await rowCount(db, deleteTable)) === 0);
  const metrics = await (await fetch(`${parking.ops}/metrics`)).text();
  t.match(metrics, /\noutrigger_outbox_messages_total\{outcome="unroutable"\} 1\n/);
});

t.test('with createTable false, a missing table is reported, not made', async (t) => {
  const db = await database(t);
  const table = uniqueTable(t, db);
  const { ops } = await startInProcess(t, {
    appId: 'outbox-no-table',
    outbox: { url: DATABASE_URL, table, createTable: false },
  });
  const readiness = await until('the outbox check to fail', async () => {
    const body = (await (await fetch(`${ops}/readyz`)).json()) as {
      checks: Record<string, { ok: boolean; detail: string }>;
    };
    return body.checks.outbox?.detail.includes('does not exist') ? body : undefined;
  });
  t.equal(readiness.checks.outbox?.ok, false);
  t.match(readiness.checks.outbox?.detail, `table ${table} does not exist (createTable is false)`);
  const { rows } = await db.query('SELECT to_regclass($1) AS oid', [table]);
  t.equal(rows[0]?.oid, null, 'no table was made');
});

for (const right of ['DELETE', 'UPDATE'] as const) {
  t.test(`a database user without ${right} on the table: nothing is published, and readiness says why`, async (t) => {
    const { db, table, topic, channel, queue } = await scene(t);
    await ensureOutboxTable(db, table);
    const granted = ['SELECT', 'UPDATE', 'DELETE'].filter((privilege) => privilege !== right);
    await db.query(`GRANT ${granted.join(', ')} ON ${quoted(table)} TO ${LIMITED_ROLE}`);
    await insertRows(db, table, [
      { topic, id: 'waits', payload: '{}' },
      { topic: 'amq.reserved', id: 'would-be-parked', payload: '{}' },
    ]);
    const { api, ops } = await startInProcess(t, {
      appId: 'outbox-rights',
      outbox: { url: LIMITED_DATABASE_URL, table, pollInterval: '200ms' },
    });
    const why = `the database: user ${LIMITED_ROLE} may not ${right} on table ${table}`;
    const refused = await until(`the outbox check to say why (${why})`, async () => {
      const seen = await outboxSeen(api, ops);
      return seen.check?.detail === why ? seen : undefined;
    });
    t.equal(refused.check?.ok, false, 'the outbox check fails');
    t.same(refused.metadata, { table, state: 'failed', detail: why }, '/v1/metadata says why');
    t.equal(refused.connected, 0, 'outrigger_outbox_connected is 0');
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // the relay tries again meanwhile
    t.same(await drain(channel, queue), [], 'nothing published');
    const { rows } = await db.query<{ id: string; parked: boolean }>(
      `SELECT id, parked_at IS NOT NULL AS parked FROM ${quoted(table)} ORDER BY seq`,
    );
    t.same(
      rows,
      [
        { id: 'waits', parked: false },
        { id: 'would-be-parked', parked: false },
      ],
      'no row deleted or parked',
    );

    // Granted, the right is found at the next try, without a restart.
    await db.query(`GRANT ${right} ON ${quoted(table)} TO ${LIMITED_ROLE}`);
    const got = await collect(channel, queue, 1, 15_000);
    t.equal(got[0]?.properties.messageId, 'waits');
    await until(
      'the row deleted, the bad one parked',
      async () => (await rowCount(db, table, 'parked_at IS NULL')) === 0,
    );
    t.match(await outboxSeen(api, ops), { check: { ok: true }, metadata: { state: 'relaying' }, connected: 1 });
  });
}

t.test('a schema-qualified table, made by the app as docs/outbox.md shows', async (t) => {
  const db = await database(t);
  const schema = `test_schema_${process.pid}`;
  await db.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  t.teardown(() => db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {}));
  const table = uniqueTable(t, db, { schema });
  await db.query(ddl(table));
  const topic = uniqueTopic('outbox');
  const channel = await inspect(t);
  const queue = await queueOn(t, channel, topic);
  await relaying(t, 'outbox-schema', { table, createTable: false, pollInterval: '10m' });
  await insertRows(db, table, [{ topic, id: 'in-a-schema', payload: '{}' }]);
  const got = await collect(channel, queue, 1, 10_000);
  t.equal(got[0]?.properties.messageId, 'in-a-schema', 'published, woken by the trigger of the DDL as documented');
});

t.test('the database going away: rows wait, the relay reconnects and publishes them', async (t) => {
  const { db, table, topic, channel, queue } = await scene(t);
  const toxiproxy = await startToxiproxy(t);
  const proxy = await toxiproxy.proxy('postgres', 5432);
  const url = DATABASE_URL.replace('127.0.0.1:5432', `127.0.0.1:${proxy.port}`);
  const { sidecar, ops } = await startInProcess(t, {
    appId: 'outbox-db-away',
    outbox: { url, table, pollInterval: '500ms' },
  });
  await until('the outbox relay', () => sidecar.outbox?.status.state === 'relaying');

  await proxy.setEnabled(false);
  await until('the outbox check to fail', async () => {
    const body = (await (await fetch(`${ops}/readyz`)).json()) as { checks: Record<string, { ok: boolean }> };
    return body.checks.outbox?.ok === false;
  });
  await insertRows(db, table, [{ topic, id: 'while-away', payload: '{}' }]);
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.same(await drain(channel, queue), [], 'nothing published without the database');
  t.equal(await rowCount(db, table), 1, 'the row waits in the table');

  await proxy.setEnabled(true);
  const got = await collect(channel, queue, 1, 20_000);
  t.equal(got[0]?.properties.messageId, 'while-away');
  await until('the row deleted', async () => (await rowCount(db, table)) === 0);
  t.equal(sidecar.outbox?.status.state, 'relaying');
});

/**
 * The kernel's timer on PostgreSQL's end (127.0.0.1:5432) of the connection from `clientPort`, from /proc/net/tcp:
 * its kind (2: keep-alive, among others) and when it fires, in seconds.
 */
async function serverSideTimer(clientPort: number): Promise<{ kind: number; seconds: number } | undefined> {
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');
  const table = await readFile('/proc/net/tcp', 'utf8');
  for (const line of table.split('\n').slice(1)) {
    const [, local, remote, , , timer] = line.trim().split(/\s+/);
    if (local !== `0100007F:${hex(5432)}` || remote !== `0100007F:${hex(clientPort)}`) continue;
    const [kind, when] = (timer ?? '').split(':');
    return { kind: Number.parseInt(kind ?? '', 16), seconds: Number.parseInt(when ?? '', 16) / 100 }; // USER_HZ
  }
  return undefined;
}

t.test(
  "PostgreSQL sees a relay gone silent within about 40 s: the relay sets its session's TCP keep-alive",
  async (t) => {
    const { db, table } = await scene(t);
    await relaying(t, 'outbox-keepalive', { table });
    const { rows } = await db.query<{ port: number }>(
      'SELECT client_port AS port FROM pg_stat_activity WHERE application_name = $1',
      ['outrigger-outbox-keepalive'],
    );
    t.equal(rows.length, 1, "the relay's session");
    const port = rows[0]?.port ?? 0;
    // Armed while the connection is idle, between the relay's polls; without the setting it is the system's 2 hours.
    const timer = await until('the keep-alive timer armed', async () => {
      const found = await serverSideTimer(port);
      return found?.kind === 2 ? found : undefined;
    });
    t.ok(
      timer.seconds > 0 && timer.seconds <= 20,
      `the server probes after at most 20 s of silence (${timer.seconds} s)`,
    );
  },
);

t.test('a connection ended while the relay is idle: the reason PostgreSQL gave is reported', async (t) => {
  const { db, table } = await scene(t);
  const { sidecar } = await relaying(t, 'outbox-terminated', { table, pollInterval: '10m' });
  const details: string[] = [];
  const watching = setInterval(() => {
    const status = sidecar.outbox?.status;
    if (status?.state === 'failed') details.push(status.detail);
  }, 5);
  t.teardown(() => clearInterval(watching));
  await db.query(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'outrigger-outbox-terminated'",
  );
  await until('the relay failed, and back', () => details.length > 0 && sidecar.outbox?.status.state === 'relaying');
  t.match(details.at(-1), /terminating connection due to administrator command/, 'not pg\'s "not queryable"');
});

interface ConnectionCut {
  cut(proxy: ToxicProxy): Promise<void>;
  heal(proxy: ToxicProxy): Promise<void>;
  /** What the check, and /v1/metadata, say. */
  detail: RegExp;
  foundWithinMs: number;
}

/**
 * A relay draining a backlog through Toxiproxy, whose connection to PostgreSQL `cut` breaks mid-pass
 * (the relay runs pass after pass): the failure is found within `foundWithinMs`, reported by the check,
 * /v1/metadata and the connected gauge while the relay tries again, nothing is published meanwhile, and
 * once `heal`ed every row goes out, at most the pass that was cut (one batch) twice.
 */
async function cutMidBacklog(t: Test, { cut, heal, detail, foundWithinMs }: ConnectionCut) {
  const { db, table, ids, got } = await backlog(t, 5_000, 'backlog');
  const toxiproxy = await startToxiproxy(t);
  const proxy = await toxiproxy.proxy('postgres', 5432);
  const url = DATABASE_URL.replace('127.0.0.1:5432', `127.0.0.1:${proxy.port}`);
  const batchSize = 50;
  const { api, ops } = await relaying(t, 'outbox-db-cut', { url, table, batchSize, pollInterval: '500ms' });
  await until('some of the rows published', () => got.length >= 500, { intervalMs: 5 });

  const cutAt = Date.now();
  await cut(proxy);
  const failed = await until(
    'the outbox check to fail',
    async () => {
      const seen = await outboxSeen(api, ops);
      return seen.check?.ok === false ? seen : undefined;
    },
    { timeoutMs: 40_000, intervalMs: 100 },
  );
  const foundMs = Date.now() - cutAt;
  t.ok(foundMs < foundWithinMs, `found within ${foundWithinMs} ms (${foundMs} ms)`);
  t.match(failed.check?.detail, detail, 'the check says why');
  t.match(failed.metadata, { table, state: 'failed', detail }, 'so does /v1/metadata');
  t.equal(failed.connected, 0, 'outrigger_outbox_connected is 0');
  await new Promise((resolve) => setTimeout(resolve, 500)); // the cut pass's messages on their way to the queue
  const publishedBefore = got.length;
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  t.equal(got.length, publishedBefore, 'nothing published while the database cannot be used');
  const left = await rowCount(db, table);
  t.ok(left > 0, `the rows wait in the table (${left})`);
  t.match(
    await outboxSeen(api, ops),
    { check: { ok: false, detail }, metadata: { state: 'failed', detail }, connected: 0 },
    'still reported, with why, while it tries again',
  );

  await heal(proxy);
  await until('every row published', () => new Set(got).size === ids.length, { timeoutMs: 30_000 });
  await until('the table emptied', async () => (await rowCount(db, table)) === 0);
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal(new Set(got).size, ids.length, 'no row lost');
  t.ok(
    got.length - ids.length <= batchSize,
    `at most the pass that was cut (one batch) went out twice (${got.length - ids.length})`,
  );
  t.match(
    await outboxSeen(api, ops),
    { check: { ok: true }, metadata: { state: 'relaying' }, connected: 1 },
    'relaying again',
  );
}

t.test('a database connection gone silent mid-pass: found, reported, replaced; no row lost', async (t) => {
  // A black hole both ways, as a network that drops the connection's packets: no RST, no FIN, no answer.
  // Found by the 15 s statement timeout; docs/outbox.md: within pollInterval (500 ms) + 15 s.
  await cutMidBacklog(t, {
    cut: async (proxy) => {
      await proxy.addToxic('silent-up', { type: 'timeout', stream: 'upstream', attributes: { timeout: 0 } });
      await proxy.addToxic('silent-down', { type: 'timeout', stream: 'downstream', attributes: { timeout: 0 } });
    },
    heal: async (proxy) => {
      await proxy.removeToxic('silent-up');
      await proxy.removeToxic('silent-down');
    },
    detail: /^the database: no answer within 15 s \(the connection went silent\)$/,
    foundWithinMs: 500 + 15_000 + 2_000,
  });
});

t.test('a database connection reset mid-pass: found at once, reported, replaced; no row lost', async (t) => {
  await cutMidBacklog(t, {
    cut: (proxy) => proxy.addToxic('reset', { type: 'reset_peer', attributes: { timeout: 0 } }),
    heal: (proxy) => proxy.removeToxic('reset'),
    detail: /^the database( connection failed)?: .*(ECONNRESET|Connection terminated)/,
    foundWithinMs: 2_000,
  });
});

t.test('the broker going away: rows wait in the table, and go out once it is back', async (t) => {
  const { db, table, topic, channel, queue } = await scene(t);
  const toxiproxy = await startToxiproxy(t);
  const proxy = await toxiproxy.proxy('rabbitmq', 5672);
  const { sidecar, ops } = await startInProcess(t, {
    appId: 'outbox-broker-away',
    broker: { url: `amqp://guest:guest@127.0.0.1:${proxy.port}`, reconnect: { initial: '100ms', max: '500ms' } },
    outbox: { url: DATABASE_URL, table, pollInterval: '500ms' },
  });
  await until('the outbox relay', () => sidecar.outbox?.status.state === 'relaying');

  await proxy.setEnabled(false);
  await until('the broker connection lost', () => sidecar.broker.state !== 'connected');
  await insertRows(
    db,
    table,
    Array.from({ length: 50 }, (_, index) => ({ topic, id: `away-${index}`, payload: '{}' })),
  );
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  t.equal(await rowCount(db, table), 50, 'every row waits in the table');
  const lag = await until('the lag gauge to grow while no pass runs', async () => {
    const text = await (await fetch(`${ops}/metrics`)).text();
    const seconds = Number(/\noutrigger_outbox_lag_seconds (\S+)\n/.exec(text)?.[1] ?? 0);
    return seconds >= 1 ? seconds : undefined;
  });
  t.ok(lag >= 1, `the lag gauge counts the waiting rows' age (${lag} s)`);

  await proxy.setEnabled(true);
  const got = await collect(channel, queue, 50, 20_000);
  t.same(new Set(got.map((message) => message.properties.messageId)).size, 50, 'all of them, once the broker is back');
  await until('the rows deleted', async () => (await rowCount(db, table)) === 0);
});

t.test("the relay's unconfirmed messages take up room under publish.maxInFlight, a pass's worth", async (t) => {
  const { db, table, topic, channel, queue } = await scene(t);
  const toxiproxy = await startToxiproxy(t);
  const proxy = await toxiproxy.proxy('rabbitmq', 5672);
  const batchSize = 10;
  const { sidecar, api } = await startInProcess(t, {
    appId: 'outbox-in-flight',
    broker: { url: `amqp://guest:guest@127.0.0.1:${proxy.port}` },
    publish: { maxInFlight: batchSize },
    outbox: { url: DATABASE_URL, table, batchSize },
  });
  await until('the outbox relay', () => sidecar.outbox?.status.state === 'relaying');
  const publish = () =>
    fetch(`${api}/v1/publish/${topic}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });

  // The broker's confirms held back: a pass of a full batch waits for them, its messages in flight.
  await proxy.addToxic('slow-confirms', { type: 'latency', attributes: { latency: 2_000, jitter: 0 } });
  await db.query('BEGIN');
  await insertRows(
    db,
    table,
    Array.from({ length: batchSize }, (_, index) => ({ topic, id: `relayed-${index}`, payload: '{}' })),
  );
  await db.query('COMMIT');
  await until('a pass in flight', () => sidecar.broker.publishesInFlight === batchSize);
  const refused = await publish();
  t.equal(refused.status, 429, "the app's publish is refused while the relay's fill publish.maxInFlight");
  t.match(await refused.json(), { code: 'BACKPRESSURE' });

  await proxy.removeToxic('slow-confirms');
  await until('the rows deleted', async () => (await rowCount(db, table)) === 0);
  t.equal((await publish()).status, 202, 'room again once the pass was confirmed');
  t.equal((await collect(channel, queue, batchSize + 1)).length, batchSize + 1);
});

t.test('stopped with a pass waiting for confirms: it ends at its deadline, not after the wait', async (t) => {
  const { db, table, topic } = await scene(t);
  const toxiproxy = await startToxiproxy(t);
  const proxy = await toxiproxy.proxy('rabbitmq', 5672);
  const { sidecar } = await startInProcess(t, {
    appId: 'outbox-stop-late',
    broker: { url: `amqp://guest:guest@127.0.0.1:${proxy.port}` },
    outbox: { url: DATABASE_URL, table },
  });
  await until('the outbox relay', () => sidecar.outbox?.status.state === 'relaying');
  await proxy.addToxic('held-confirms', { type: 'latency', attributes: { latency: 30_000, jitter: 0 } });
  await insertRows(db, table, [{ topic, id: 'late-1', payload: '{}' }]);
  await until('a pass waiting for its confirm', () => sidecar.broker.publishesInFlight === 1);
  const started = Date.now();
  await sidecar.outbox?.stop(Date.now() + 300);
  const took = Date.now() - started;
  // The pass waits up to 10 s for its confirms; the deadline is the sidecar's grace period, which must hold.
  t.ok(took < 3_000, `stopped at its deadline, not after the confirm wait (${took} ms)`);
  t.equal(sidecar.outbox?.status.state, 'closed');
  await proxy.removeToxic('held-confirms'); // the sidecar's own stop (teardown) then finds the broker quick again
  await until('the pass rolled back: its row still there', async () => (await rowCount(db, table)) === 1);
});

t.test('a relay killed mid-pass loses nothing: the next one publishes what it had not deleted', async (t) => {
  const { db, table, ids, got } = await backlog(t, 20_000, 'kill');

  const config = { appId: 'outbox-kill', broker: { url: BROKER_URL }, outbox: { url: DATABASE_URL, table } };
  const first = await startSidecar(t, config);
  await until('some of the rows published', () => got.length >= 1_000, { intervalMs: 5 });
  await first.stop('SIGKILL');
  const left = await rowCount(db, table);
  t.ok(left > 0 && left < ids.length, `killed mid-way: ${left} rows left`);

  await startSidecar(t, config);
  await until('the table emptied', async () => (await rowCount(db, table)) === 0, { timeoutMs: 60_000 });
  await until('the last messages', () => new Set(got).size === ids.length, { timeoutMs: 10_000 });
  t.equal(new Set(got).size, ids.length, 'every row was published');
  t.ok(
    got.length - ids.length <= 100,
    `at most the killed pass's rows (one batch) went out twice (${got.length - ids.length}), with the same ids`,
  );
});

t.test('the send span joins the trace of the request that wrote the row (its traceparent)', async (t) => {
  const receiver = await startOtlpReceiver(t);
  const { db, table, topic, channel, queue } = await scene(t);
  const { ops } = await startSidecar(
    t,
    { appId: 'outbox-trace', broker: { url: BROKER_URL }, outbox: { url: DATABASE_URL, table } },
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    },
  );
  await until('the relay ready', async () => (await fetch(`${ops}/readyz`)).status === 200);
  const traceId = randomBytes(16).toString('hex');
  const parentId = randomBytes(8).toString('hex');
  await insertRows(db, table, [
    { topic, id: 'traced', payload: '{}', headers: { traceparent: `00-${traceId}-${parentId}-01` } },
  ]);
  const [message] = await collect(channel, queue, 1);
  const send = await until('the send span', () =>
    receiver.spans.find((span) => span.traceId === traceId && span.name === `send ${topic}`),
  );
  t.equal(send.kind, KIND.producer);
  t.equal(send.parentSpanId, parentId, "a child of the app's span that wrote the row");
  t.equal(send.attributes['messaging.system'], 'rabbitmq');
  t.equal(send.attributes['messaging.message.id'], 'traced');
  t.equal(
    message?.properties.headers?.traceparent,
    `00-${traceId}-${send.spanId}-01`,
    'the message carries the send span on, for the consumer to continue the trace',
  );
});
