// The outbox relay: how soon a committed row is a message on a queue, and
// how many rows a second a relay drains, through the sidecar (outbox/relay.ts)
// beside a bare relay written here with node-postgres and amqplib (the same
// algorithm: LISTEN, take 100 rows FOR UPDATE SKIP LOCKED, publish on a
// confirm channel, delete the confirmed, commit), in a process of its own as
// the sidecar is; same database, same broker, same run.
//
// `make bench` runs it with the others; `node bench/outbox.ts` alone.
import type { ChildProcess } from 'node:child_process';
import { type Channel, type ConfirmChannel, connect } from 'amqplib';
import pg from 'pg';
import { dropDdl, ensureTable, quoted } from '../sidecar/src/outbox/table.ts';
import { forkListening } from './floor-process.ts';
import { median, percentiles, type Row } from './report.ts';
import { BROKER, spawnSidecar, untilReady } from './sidecar.ts';

const DATABASE = process.env.OUTRIGGER_DATABASE_URL ?? 'postgres://outrigger:outrigger@127.0.0.1:5432/outrigger';
const TOPIC = 'bench.outbox';
const BATCH = 100;

export async function benchOutbox({ latencyRows = 500, drainRows = 20_000, runs = 2 } = {}): Promise<Row[]> {
  const db = new pg.Client({ connectionString: DATABASE });
  await db.connect();
  const connection = await connect(BROKER);
  const channel = await connection.createChannel();
  await channel.assertExchange(TOPIC, 'topic', { durable: true });
  const { queue } = await channel.assertQueue('bench.outbox.sink', { durable: true });
  await channel.bindQueue(queue, TOPIC, '#');
  await channel.purgeQueue(queue);
  const arrivals = new Arrivals(channel, queue);
  await arrivals.start();

  const sides = {
    sidecar: await sidecarRelay(db),
    direct: await bareRelayProcess(db),
  };
  const latency = { sidecar: [] as number[], direct: [] as number[] };
  const rates = { sidecar: [] as number[], direct: [] as number[] };
  for (let run = 0; run < runs; run++) {
    for (const name of run % 2 === 0 ? (['sidecar', 'direct'] as const) : (['direct', 'sidecar'] as const)) {
      const { table } = sides[name];
      latency[name].push(...(await commitToMessage(db, table, arrivals, latencyRows / runs)));
      const rate = await drainRate(db, table, arrivals, drainRows);
      rates[name].push(rate);
      console.error(`outbox ${name}: drained ${drainRows} rows at ${rate.toFixed(0)} rows/s`);
    }
  }
  await sides.sidecar.stop();
  await sides.direct.stop();
  await connection.close();
  for (const { table } of Object.values(sides)) {
    await db.query(dropDdl(table));
  }
  await db.end();

  const sidecarLatency = percentiles(latency.sidecar);
  const directLatency = percentiles(latency.direct);
  return [
    {
      name: 'outbox: commit to message on the queue (ms)',
      outrigger: sidecarLatency,
      direct: directLatency,
      note: `${latency.sidecar.length} single-row transactions one after another, woken by NOTIFY; direct: a bare pg + amqplib relay, same algorithm, in its own process`,
      target: 'none set',
    },
    {
      name: 'outbox: rows drained per second (rows/s)',
      outrigger: { p50: median(rates.sidecar) },
      direct: { p50: median(rates.direct) },
      note: `${drainRows} rows committed at once, batches of ${BATCH}, median of ${runs} runs each`,
      target: 'none set',
    },
  ];
}

/** When each message id reached the queue (performance.now()). */
class Arrivals {
  private readonly waiting = new Map<string, (at: number) => void>();
  private count = 0;
  private onCount: (() => void) | undefined;
  private wanted = 0;

  private readonly channel: Channel;
  private readonly queue: string;

  constructor(channel: Channel, queue: string) {
    this.channel = channel;
    this.queue = queue;
  }

  async start(): Promise<void> {
    await this.channel.consume(
      this.queue,
      (message) => {
        if (message === null) return;
        const at = performance.now();
        this.waiting.get(message.properties.messageId)?.(at);
        this.count += 1;
        if (this.onCount !== undefined && this.count >= this.wanted) this.onCount();
      },
      { noAck: true },
    );
  }

  of(id: string): Promise<number> {
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }

  /** Resolves once `n` more messages arrived. */
  next(n: number): Promise<void> {
    this.wanted = this.count + n;
    return new Promise((resolve) => {
      this.onCount = () => {
        this.onCount = undefined;
        resolve();
      };
    });
  }
}

async function commitToMessage(db: pg.Client, table: string, arrivals: Arrivals, rows: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < rows; i++) {
    const id = `${table}-${i}-${Date.now()}`;
    const arrived = arrivals.of(id);
    const started = performance.now();
    await db.query(`INSERT INTO ${quoted(table)} (id, topic, payload) VALUES ($1, $2, $3)`, [
      id,
      TOPIC,
      Buffer.from('{}'),
    ]);
    samples.push((await arrived) - started);
  }
  return samples;
}

async function drainRate(db: pg.Client, table: string, arrivals: Arrivals, rows: number): Promise<number> {
  const done = arrivals.next(rows);
  const started = performance.now();
  await db.query(
    `INSERT INTO ${quoted(table)} (topic, payload) SELECT $1, convert_to('{"reading":' || n || '}', 'UTF8') FROM generate_series(1, $2) AS n`,
    [TOPIC, rows],
  );
  await done;
  return rows / ((performance.now() - started) / 1000);
}

interface Relay {
  table: string;
  stop(): Promise<void>;
}

async function sidecarRelay(db: pg.Client): Promise<Relay> {
  const table = `bench_outbox_sidecar_${process.pid}`;
  await db.query(dropDdl(table));
  const child = spawnSidecar(
    { http: 19640, ops: 19641 },
    { config: { outbox: { url: DATABASE, table, batchSize: BATCH } } },
  );
  await untilReady(19641);
  return {
    table,
    stop: () => stopProcess(child),
  };
}

/** Stops a relay's process: SIGTERM, then its exit. */
async function stopProcess(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
}

async function bareRelayProcess(db: pg.Client): Promise<Relay> {
  const table = `bench_outbox_direct_${process.pid}`;
  await db.query(dropDdl(table));
  await ensureTable(db, table);
  const child = await forkListening(new URL(import.meta.url), ['--bare-relay', table]);
  return {
    table,
    stop: () => stopProcess(child),
  };
}

/** The direct alternative: the relay any team would write with these two libraries. */
async function bareRelay(table: string, confirm: ConfirmChannel): Promise<Relay> {
  const client = new pg.Client({ connectionString: DATABASE });
  await client.connect();
  await client.query(`LISTEN "${table}"`);
  let stopping = false;
  let wake: (() => void) | undefined;
  let woken = false;
  client.on('notification', () => {
    if (wake === undefined) woken = true;
    else wake();
  });
  const publish = (row: { id: string; topic: string; payload: Buffer; content_type: string }) =>
    new Promise<void>((resolve, reject) =>
      confirm.publish(
        row.topic,
        row.topic,
        row.payload,
        { persistent: true, mandatory: true, messageId: row.id, contentType: row.content_type },
        (error) => (error ? reject(error) : resolve()),
      ),
    );
  const loop = (async () => {
    while (!stopping) {
      woken = false;
      await client.query('BEGIN');
      const { rows } = await client.query(
        `SELECT seq, id, topic, payload, content_type FROM "${table}" WHERE parked_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [BATCH],
      );
      await Promise.all(rows.map(publish));
      if (rows.length > 0) {
        await client.query(`DELETE FROM "${table}" WHERE seq = ANY($1::bigint[])`, [rows.map((row) => row.seq)]);
      }
      await client.query('COMMIT');
      if (rows.length < BATCH && !woken && !stopping) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 5_000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  })();
  return {
    table,
    stop: async () => {
      stopping = true;
      wake?.();
      await loop;
      await client.end();
    },
  };
}

if (process.argv[2] === '--bare-relay') {
  const connection = await connect(BROKER);
  const relay = await bareRelay(process.argv[3] as string, await connection.createConfirmChannel());
  process.once('SIGTERM', () => {
    void relay
      .stop()
      .then(() => connection.close())
      .then(() => process.exit(0));
  });
  process.send?.('listening');
} else if (import.meta.main) {
  const { table } = await import('./report.ts');
  console.log(table(await benchOutbox()));
}
