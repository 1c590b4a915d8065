// The outbox relay: publishes the messages an app committed to its outbox
// table, and deletes each row only after the broker confirmed its message.
// One pass is one transaction: take the oldest pending rows no other relay
// holds (FOR UPDATE SKIP LOCKED, so replicas share the table without
// publishing a row twice), publish them all at once on the confirm channel,
// delete the confirmed ones, park the ones that can never be published,
// commit. A relay that dies mid-pass leaves its rows to the next one: a
// message can be published twice (with the same id, which consumers dedupe
// on), never lost. Passes run when the table's trigger NOTIFYs, after a full
// batch, and every `pollInterval` in case a notification was missed.
import pg from 'pg';
import type { Broker, OutgoingMessage } from '../broker/broker.ts';
import type { OutboxConfig } from '../config/outbox.ts';
import { backoffMs } from '../delivery/backoff.ts';
import type { HealthCheck } from '../health/readiness.ts';
import { publishTo, send } from '../messaging/send.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { messageOf } from './row.ts';
import { channelOf, ensureTable, missingPrivileges, type OutboxRow, OutboxStatements, tableExists } from './table.ts';

const OUTBOX_CHECK = 'outbox';
/** The longest wait for a pass's confirms: what is confirmed by then is deleted, the rest taken again later. */
const CONFIRM_WAIT_MS = 10_000;
/** Any one statement: a connection that went silent (no RST) fails here, not after TCP's own retries. */
const QUERY_TIMEOUT_MS = 15_000;
/** While the broker is away, how often the relay looks again (and reads the oldest row's age). */
const BROKER_WAIT_MS = 1_000;
/** Back-off between failed passes or connections; reset by a pass that commits. */
const RECONNECT = { initial: 200, max: 10_000, multiplier: 2, jitter: 0.5 };
/**
 * Parked rows are counted (from the table's index of them) every pollInterval, at least this far apart:
 * not once per pass, which during a backlog would be hundreds of counts a second.
 */
const PARKED_COUNT_MIN_MS = 1_000;
/**
 * Ends a session stuck inside a pass, so that its rows go to another replica: a frozen sidecar, or one cut off by a
 * network that drops packets. A pass waits inside its transaction at most CONFIRM_WAIT_MS between two statements;
 * six times that is not a pass at work.
 */
const STUCK_TRANSACTION = '60s';
/**
 * The server's TCP keep-alive on the session (seconds): a sidecar gone without a word is seen gone by PostgreSQL
 * after 20 s of silence and 4 probes 5 s apart, whether or not a pass was under way. Ignored over a Unix socket.
 */
const SERVER_KEEPALIVE = 'SET tcp_keepalives_idle = 20; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 4';

export type OutboxState = 'connecting' | 'relaying' | 'failed' | 'closed';

export interface OutboxRelayDeps {
  config: OutboxConfig;
  broker: Broker;
  metrics: Metrics;
  logger: Logger;
  appId: string;
}

/** What one pass did. */
interface Pass {
  taken: number;
  /** Rows left in the table because their message was not confirmed. */
  failed: number;
}

/** How one row's publish ended; `failed` leaves the row for the next pass. */
type Sent = { outcome: 'routed' | 'unroutable' } | { outcome: 'failed'; error: string };

export class OutboxRelay {
  private readonly config: OutboxConfig;
  private readonly broker: Broker;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private readonly appId: string;
  private readonly statements: OutboxStatements;
  private state: OutboxState = 'connecting';
  private detail = 'not started';
  private stopping = false;
  private running: Promise<void> | undefined;
  /** A notification (or stop, or a lost connection) came: the next wait ends at once. */
  private woken = false;
  private wake: (() => void) | undefined;
  /** The connection in use, ended by stop() when its deadline passes. */
  private client: pg.Client | undefined;
  /** The first error the current client reported on its own (a connection lost while idle): why it failed. */
  private clientError: Error | undefined;
  /** When the oldest pending row was written (ms since the epoch), as last seen; undefined when none was. */
  private oldestPending: number | undefined;
  /** The table's parked rows, as last counted, and when they are counted next (Date.now() terms). */
  private parkedRows = 0;
  private parkedCountDue = 0;

  readonly health: HealthCheck = {
    name: OUTBOX_CHECK,
    check: () => ({ ok: this.state === 'relaying', detail: this.detail }),
  };

  constructor(deps: OutboxRelayDeps) {
    this.config = deps.config;
    this.broker = deps.broker;
    this.metrics = deps.metrics;
    this.logger = deps.logger.child({ outbox: deps.config.table });
    this.appId = deps.appId;
    this.statements = new OutboxStatements(deps.config.table);
    deps.metrics.onScrape(() => {
      const oldest = this.oldestPending;
      this.metrics.outboxLag.set(oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000));
      this.metrics.outboxConnected.set(this.state === 'relaying' ? 1 : 0);
      this.metrics.outboxParkedRows.set(this.parkedRows);
    });
  }

  get status(): { table: string; state: OutboxState; detail: string } {
    return { table: this.config.table, state: this.state, detail: this.detail };
  }

  /** Starts relaying in the background; never waits for the database. */
  start(): void {
    this.running ??= this.run();
  }

  /**
   * Ends the pass under way (its confirms, its commit), then the connection. At `deadline`
   * (Date.now() terms) the connection is closed whatever it is doing: an unfinished pass rolls back.
   */
  async stop(deadline?: number): Promise<void> {
    this.stopping = true;
    this.notify();
    if (this.running !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        if (deadline !== undefined) timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      });
      const finished = await Promise.race([this.running.then(() => true), late.then(() => false)]);
      clearTimeout(timer);
      await this.client?.end().catch(() => {});
      // Past the deadline the pass is not waited for: it may still wait out its confirms (up to 10 s); its next
      // statement fails on the closed connection, and the loop ends, as it is stopping. Its rows roll back.
      if (!finished) void this.running.catch(() => {});
    }
    this.state = 'closed';
    this.detail = 'stopped';
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      const client = this.newClient();
      this.client = client;
      this.clientError = undefined;
      try {
        await this.open(client);
        await this.relayOn(client, () => {
          failures = 0;
        });
      } catch (error) {
        if (this.stopping) break;
        failures += 1;
        this.state = 'failed';
        const cause = describe(this.clientError ?? error);
        this.detail = `the database: ${cause}`;
        this.logger.warn({ err: cause, failures }, 'outbox relay: cannot use the database; trying again');
        await this.wait(backoffMs(RECONNECT, failures));
      } finally {
        this.client = undefined;
        await client.end().catch(() => {});
      }
    }
  }

  private newClient(): pg.Client {
    const client = new pg.Client({
      connectionString: this.config.url,
      application_name: `outrigger-${this.appId}`,
      connectionTimeoutMillis: 10_000,
      query_timeout: QUERY_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    // A connection lost while idle: without a listener it would be an uncaught error. Its cause is kept: the
    // next query on the client fails only with pg's "not queryable", which says nothing.
    client.on('error', (error) => {
      this.clientError ??= error;
      this.state = 'failed';
      this.detail = `the database connection failed: ${describe(this.clientError)}`;
      this.notify();
    });
    client.on('notification', () => this.notify());
    return client;
  }

  /** Connects, makes sure of the table and of the rights a pass needs, listens for its notifications. */
  private async open(client: pg.Client): Promise<void> {
    // After a failure the relay stays `failed`, with why, until it relays again: trying again is not recovering.
    if (this.state !== 'failed') this.state = 'connecting';
    await client.connect();
    // SET, not a startup parameter: connection poolers refuse unknown ones.
    await client.query(`SET idle_in_transaction_session_timeout = '${STUCK_TRANSACTION}'; ${SERVER_KEEPALIVE}`);
    const { table, createTable } = this.config;
    if (createTable) {
      if ((await ensureTable(client, table)) === 'created') this.logger.info('outbox table created');
    } else if (!(await tableExists(client, table))) {
      throw new Error(`table ${table} does not exist (createTable is false)`);
    }
    const missing = await missingPrivileges(client, table);
    if (missing.length > 0) throw new Error(`user ${client.user} may not ${missing.join(', ')} on table ${table}`);
    await client.query(`LISTEN "${channelOf(table)}"`);
    this.state = 'relaying';
    this.detail = `relaying ${table}`;
    this.logger.info('outbox relay connected');
  }

  /** Passes until stopped; throws when the connection fails. `committed` is told of every pass that committed. */
  private async relayOn(client: pg.Client, committed: () => void): Promise<void> {
    while (!this.stopping) {
      if (Date.now() >= this.parkedCountDue) await this.countParked(client);
      if (this.broker.state !== 'connected') {
        // No pass: the age of the oldest row keeps the lag gauge true, and the query keeps the connection honest.
        const { rows } = await client.query<{ created_at: Date }>(this.statements.oldest);
        this.oldestPending = rows[0]?.created_at.getTime();
        await this.wait(Math.min(BROKER_WAIT_MS, this.config.pollInterval));
        continue;
      }
      this.woken = false;
      const pass = await this.pass(client);
      committed();
      if (pass.failed > 0) await this.wait(Math.min(BROKER_WAIT_MS, this.config.pollInterval));
      else if (pass.taken < this.config.batchSize) await this.wait(this.config.pollInterval);
    }
  }

  /** Counts the table's parked rows: every replica's, and those parked before it started. */
  private async countParked(client: pg.Client): Promise<void> {
    const { rows } = await client.query<{ n: number }>(this.statements.countParked);
    this.parkedRows = rows[0]?.n ?? 0;
    this.parkedCountDue = Date.now() + Math.max(this.config.pollInterval, PARKED_COUNT_MIN_MS);
  }

  /** One transaction: take, publish, delete what was confirmed, park what never can be (or found no queue). */
  private async pass(client: pg.Client): Promise<Pass> {
    // A statement that fails ends the pass and its connection, which run() closes: the server rolls the
    // transaction back. No ROLLBACK here: after a statement timed out, pg sends nothing more on the
    // connection until the server answers it, so a ROLLBACK would only wait out a second timeout.
    await client.query('BEGIN');
    // Counted once committed: a pass that rolls back publishes its rows again, and counts them then.
    const tally = { published: 0, unroutable: 0, parked: 0, failed: 0 };
    let firstFailure: string | undefined;
    const { rows } = await client.query<OutboxRow>(this.statements.take, [this.config.batchSize]);
    const taken = rows.length;
    this.oldestPending = rows[0]?.created_at.getTime();
    const publishing: OutboxRow[] = [];
    const sends: Promise<Sent>[] = [];
    const parking: { seq: string; why: string }[] = [];
    for (const row of rows) {
      const converted = messageOf(row, this.broker.maxDelayMs);
      if ('problem' in converted) {
        parking.push({ seq: row.seq, why: converted.problem });
        this.logger.warn({ seq: row.seq, id: row.id, problem: converted.problem }, 'outbox row parked');
      } else {
        publishing.push(row);
        sends.push(this.publish(converted.message));
      }
    }
    tally.parked = parking.length;
    const sent = await settledWithin(sends, CONFIRM_WAIT_MS);
    const done: string[] = [];
    for (const [index, row] of publishing.entries()) {
      const result = sent[index];
      if (result === undefined || result.outcome === 'failed') {
        tally.failed += 1;
        firstFailure ??= result?.error ?? `not confirmed within ${CONFIRM_WAIT_MS / 1000} s`;
      } else if (result.outcome === 'routed') {
        tally.published += 1;
        done.push(row.seq);
      } else {
        tally.unroutable += 1;
        if (this.config.unroutable === 'delete') done.push(row.seq);
        else parking.push({ seq: row.seq, why: `unroutable: no queue is bound to topic ${row.topic}` });
      }
    }
    if (parking.length > 0) {
      await client.query(this.statements.park, [parking.map(({ seq }) => seq), parking.map(({ why }) => why)]);
    }
    if (done.length > 0) await client.query(this.statements.remove, [done]);
    await client.query('COMMIT');
    for (const [outcome, n] of Object.entries(tally)) if (n > 0) this.metrics.outboxMessages.inc({ outcome }, n);
    if (firstFailure !== undefined) {
      this.logger.warn(
        { rows: tally.failed, reason: firstFailure },
        'outbox relay: rows not published; left for the next pass',
      );
    } else if (taken < this.config.batchSize) {
      this.oldestPending = undefined; // all of them taken, none left
    }
    return { taken, failed: tally.failed };
  }

  /**
   * Publishes one row's message; never rejects. Its send span is a child of the row's traceparent
   * (the app's, written with the row), so it joins the trace of the request that made it.
   */
  private async publish(message: OutgoingMessage): Promise<Sent> {
    try {
      const { routed } = await send(message, this.metrics, publishTo(this.broker, message), 'headers');
      return { outcome: routed ? 'routed' : 'unroutable' };
    } catch (error) {
      return { outcome: 'failed', error: describe(error) };
    }
  }

  /** Waits `ms`, or less when notified (a notification, stop, a lost connection). */
  private wait(ms: number): Promise<void> {
    if (this.woken || this.stopping) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private notify(): void {
    const wake = this.wake;
    if (wake === undefined) this.woken = true;
    else wake();
  }
}

/** What each promise came to within `ms`; undefined for those still pending then. */
async function settledWithin<T>(promises: Promise<T>[], ms: number): Promise<(T | undefined)[]> {
  const results: (T | undefined)[] = promises.map(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(
      promises.map(async (promise, index) => {
        results[index] = await promise;
      }),
    ),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
  return [...results]; // later results are not seen
}

function describe(error: unknown): string {
  const { code, message } = error as { code?: unknown; message?: unknown };
  // pg's words for its query_timeout, which say nothing of how long or why.
  if (message === 'Query read timeout')
    return `no answer within ${QUERY_TIMEOUT_MS / 1000} s (the connection went silent)`;
  const text = typeof message === 'string' && message !== '' ? message : String(error);
  return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
}
