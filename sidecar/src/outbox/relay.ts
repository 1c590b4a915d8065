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
import { context, propagation, ROOT_CONTEXT } from '@opentelemetry/api';
import pg from 'pg';
import { type Broker, isBrokerUnavailable, type OutgoingMessage } from '../broker/broker.ts';
import type { OutboxConfig } from '../config/outbox.ts';
import { backoffMs } from '../delivery/backoff.ts';
import type { HealthCheck } from '../health/readiness.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { endSpan, startSend } from '../telemetry/spans.ts';
import { messageOf } from './row.ts';
import { channelOf, ensureTable, type OutboxRow, OutboxStatements, tableExists } from './table.ts';

export const OUTBOX_CHECK = 'outbox';
/** The longest wait for a pass's confirms: past it the pass is rolled back and its rows taken again later. */
const CONFIRM_WAIT_MS = 30_000;
/** While the broker is away, how often the relay looks again. */
const BROKER_WAIT_MS = 1_000;
/** Back-off between attempts to reach the database. */
const RECONNECT = { initial: 200, max: 10_000, multiplier: 2, jitter: 0.5 };
/** Kills a session stuck inside a pass (a frozen sidecar), so that its rows go to another replica. */
const STUCK_TRANSACTION_MS = 5 * 60_000;

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
    deps.metrics.onScrape(() => this.metrics.outboxConnected.set(this.state === 'relaying' ? 1 : 0));
  }

  get status(): { state: OutboxState; detail: string } {
    return { state: this.state, detail: this.detail };
  }

  /** Starts relaying in the background; never waits for the database. */
  start(): void {
    this.running ??= this.run();
  }

  /** Ends the pass under way (its confirms, its commit), then the connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.notify();
    await this.running;
    this.state = 'closed';
    this.detail = 'stopped';
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      const client = this.newClient();
      try {
        await this.open(client);
        failures = 0;
        await this.relayOn(client);
      } catch (error) {
        if (this.stopping) break;
        failures += 1;
        this.state = 'failed';
        this.detail = `the database: ${describe(error)}`;
        this.logger.warn({ err: describe(error), failures }, 'outbox relay: cannot use the database; trying again');
        await this.wait(backoffMs(RECONNECT, failures));
      } finally {
        await client.end().catch(() => {});
      }
    }
  }

  private newClient(): pg.Client {
    const client = new pg.Client({
      connectionString: this.config.url,
      application_name: `outrigger-${this.appId}`,
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
      idle_in_transaction_session_timeout: STUCK_TRANSACTION_MS,
    });
    // A connection lost while idle: without a listener it would be an uncaught error.
    client.on('error', (error) => {
      this.state = 'failed';
      this.detail = `the database connection failed: ${describe(error)}`;
      this.notify();
    });
    client.on('notification', () => this.notify());
    return client;
  }

  /** Connects, makes sure of the table, listens for its notifications. */
  private async open(client: pg.Client): Promise<void> {
    this.state = 'connecting';
    await client.connect();
    const { table, createTable } = this.config;
    if (createTable) {
      if ((await ensureTable(client, table)) === 'created') this.logger.info('outbox table created');
    } else if (!(await tableExists(client, table))) {
      throw new Error(`table ${table} does not exist (createTable is false)`);
    }
    await client.query(`LISTEN "${channelOf(table)}"`);
    this.state = 'relaying';
    this.detail = `relaying ${table}`;
    this.logger.info('outbox relay connected');
  }

  /** Passes until stopped; throws when the connection fails. */
  private async relayOn(client: pg.Client): Promise<void> {
    while (!this.stopping) {
      if (this.broker.state !== 'connected') {
        await this.wait(Math.min(BROKER_WAIT_MS, this.config.pollInterval));
        continue;
      }
      this.woken = false;
      const pass = await this.pass(client);
      if (pass.failed > 0) await this.wait(Math.min(BROKER_WAIT_MS, this.config.pollInterval));
      else if (pass.taken < this.config.batchSize) await this.wait(this.config.pollInterval);
    }
  }

  /** One transaction: take, publish, delete what was confirmed, park what never can be. */
  private async pass(client: pg.Client): Promise<Pass> {
    await client.query('BEGIN');
    try {
      const { rows } = await client.query<OutboxRow>(this.statements.take, [this.config.batchSize]);
      const oldest = rows[0]?.created_at;
      this.metrics.outboxLag.set(oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest.getTime()) / 1000));
      const now = Date.now();
      const sends: Promise<string | undefined>[] = [];
      for (const row of rows) {
        const converted = messageOf(row, this.broker.maxDelayMs, now);
        if ('problem' in converted) {
          await client.query(this.statements.park, [row.seq, converted.problem]);
          this.metrics.outboxMessages.inc({ outcome: 'parked' });
          this.logger.warn({ seq: row.seq, id: row.id, problem: converted.problem }, 'outbox row parked');
        } else {
          sends.push(this.publish(row, converted.message));
        }
      }
      const confirmed = (await withinConfirmWait(Promise.all(sends))).filter((seq) => seq !== undefined);
      if (confirmed.length > 0) await client.query(this.statements.remove, [confirmed]);
      await client.query('COMMIT');
      return { taken: rows.length, failed: sends.length - confirmed.length };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  }

  /** The row's seq once the broker confirmed its message; undefined when it did not (the row stays). */
  private async publish(row: OutboxRow, message: OutgoingMessage): Promise<string | undefined> {
    const started = performance.now();
    // The app's traceparent, written with the row: the send span joins the trace of the request that made it.
    const span = context.with(propagation.extract(ROOT_CONTEXT, message.headers), () => startSend(message));
    try {
      const { routed } = await this.broker.publish(message);
      span?.setAttribute('outrigger.routed', routed);
      span?.end();
      this.metrics.publishes.inc({ topic: message.topic, outcome: routed ? 'routed' : 'unroutable' });
      this.metrics.publishDuration.observe({ topic: message.topic }, (performance.now() - started) / 1000);
      this.metrics.outboxMessages.inc({ outcome: routed ? 'published' : 'unroutable' });
      return row.seq;
    } catch (error) {
      const unavailable = isBrokerUnavailable(error);
      endSpan(span, { 'error.type': unavailable ? 'BROKER_UNAVAILABLE' : 'INTERNAL' }, describe(error));
      this.metrics.publishes.inc({ topic: message.topic, outcome: 'broker_unavailable' });
      this.metrics.outboxMessages.inc({ outcome: 'failed' });
      if (!unavailable) this.logger.error({ err: error, seq: row.seq }, 'outbox relay: publish failed');
      return undefined;
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

/** The confirms of a pass, or a timeout: a blocked broker must not hold the rows' locks forever. */
function withinConfirmWait<T>(confirms: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the broker did not confirm within ${CONFIRM_WAIT_MS / 1000} s`)),
      CONFIRM_WAIT_MS,
    );
  });
  return Promise.race([confirms, timeout]).finally(() => clearTimeout(timer));
}

function describe(error: unknown): string {
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' && message !== '' ? message : String(error);
  return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
}
