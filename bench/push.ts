// Push delivery through the sidecar beside the direct alternative, an amqplib
// consumer doing the same work (bench/push-direct.ts), in the same run, to
// the same app (bench/push-app.ts), each in a process of its own.
//
// Throughput: N messages are loaded into the queue first (raw amqplib,
// confirmed), then the consumer process starts; the rate is N over the time
// from the first to the last message the app sees. Runs alternate between the
// two sides. Latency: with the consumer idle on an empty queue, messages are
// published at a fixed, moderate rate; each carries its publish time, and the
// app takes the difference on arrival (one monotonic clock for all processes).
//
// `make bench` runs it with the others; `node bench/push.ts` alone (see the
// end of the file). BENCH_CPU_PROF=<dir> writes a V8 CPU profile of every
// consumer process there (summarize one with `node bench/cpu-profile.ts <file>`).
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ConfirmChannel, connect } from 'amqplib';
import { usage } from './load.ts';
import { median, percentiles, type Row } from './report.ts';
import { BROKER, spawnSidecar, untilReady } from './sidecar.ts';

const TOPIC = 'bench.push';
/** The sidecar's queues (app id "bench" is its group) and the direct side's. */
const SIDECAR_QUEUE = `bench:${TOPIC}`;
const SIDECAR_DLQ = `${SIDECAR_QUEUE}:dlq`;
const DIRECT_QUEUE = 'bench.push.direct';
const ROUTE = '/readings';
const PORTS = { app: 19_610, http: 19_611, ops: 19_612 };
const here = (file: string) => new URL(file, import.meta.url).pathname;
const PROFILE_DIR = process.env.BENCH_CPU_PROF;

type Side = 'outrigger' | 'direct';
interface Done {
  count: number;
  unique: number;
  first: number;
  last: number;
  latencies: number[];
}

const now = () => Number(process.hrtime.bigint()) / 1e6;

/** The app process: arm it for `count` messages, hear when the first came and when all are in. */
class App {
  private readonly child: ChildProcess;
  private listener: ((message: { type: string } & Partial<Done>) => void) | undefined;

  private constructor(child: ChildProcess) {
    this.child = child;
    child.on('message', (message) => this.listener?.(message as { type: string } & Partial<Done>));
  }

  get pid(): number {
    return this.child.pid as number;
  }

  static async start(): Promise<App> {
    const child = fork(here('./push-app.ts'), [String(PORTS.app)], { stdio: 'inherit' });
    await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) => reject(new Error(`the app exited (${code}) before listening on ${PORTS.app}`)));
    });
    return new App(child);
  }

  /** Resolves once armed; `first` runs at the first arrival, `done` once `count` have arrived. */
  async expect(count: number, onFirst: () => void = () => {}): Promise<{ done: Promise<Done> }> {
    let armed: () => void = () => {};
    let finished: (done: Done) => void = () => {};
    const done = new Promise<Done>((resolve) => {
      finished = resolve;
    });
    const isArmed = new Promise<void>((resolve) => {
      armed = resolve;
    });
    this.listener = (message) => {
      if (message.type === 'armed') armed();
      else if (message.type === 'first') onFirst();
      else if (message.type === 'done') finished(message as unknown as Done);
    };
    this.child.send({ type: 'expect', count });
    await isArmed;
    return { done: withTimeout(done, 180_000, `the app did not get ${count} messages in time`) };
  }

  async stop(): Promise<void> {
    this.child.send({ type: 'stop' });
    await new Promise((resolve) => this.child.once('exit', resolve));
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Consumer processes still running, killed if the benchmark exits early. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A consumer process of either side, taking its queue with `concurrency` pushes in flight; `ready` once it consumes. */
function startConsumer(side: Side, concurrency: number): { child: ChildProcess; ready: Promise<unknown> } {
  const nodeArgs =
    PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}/${side}-${concurrency}`];
  if (side === 'outrigger') {
    const child = spawnSidecar(
      { http: PORTS.http, ops: PORTS.ops },
      {
        nodeArgs,
        config: {
          app: { port: PORTS.app },
          subscriptions: [{ name: 'readings', topic: TOPIC, route: ROUTE, concurrency }],
        },
      },
    );
    running.add(child);
    return { child, ready: untilReady(PORTS.ops) };
  }
  const args = [BROKER, DIRECT_QUEUE, String(concurrency), String(2 * concurrency), String(PORTS.app), ROUTE];
  const child = fork(here('./push-direct.ts'), args, { execArgv: nodeArgs, stdio: 'inherit' });
  running.add(child);
  return { child, ready: new Promise<void>((resolve) => child.once('message', () => resolve())) };
}

async function stopConsumer(child: ChildProcess): Promise<void> {
  running.delete(child);
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const stuck = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(stuck);
}

const queueOf = (side: Side) => (side === 'outrigger' ? SIDECAR_QUEUE : DIRECT_QUEUE);

function body(seq: number, sentAt: number): Buffer {
  return Buffer.from(JSON.stringify({ seq, sentAt, sensor: 'sensor-1', celsius: 21.5, at: '2026-01-01T00:00:00Z' }));
}

/** Publishes like the sidecar does (persistent, JSON, a message id, the topic header), straight into `queue`. */
function publishOne(channel: ConfirmChannel, queue: string, seq: number): boolean {
  return channel.publish('', queue, body(seq, now()), {
    persistent: true,
    contentType: 'application/json',
    messageId: randomUUID(),
    timestamp: Math.floor(Date.now() / 1000),
    appId: 'bench',
    headers: { 'outrigger-topic': TOPIC },
  });
}

/** `count` messages into `queue`, as fast as confirms allow. */
async function preload(channel: ConfirmChannel, queue: string, count: number): Promise<void> {
  for (let seq = 0; seq < count; seq++) {
    if (!publishOne(channel, queue, seq)) await new Promise((resolve) => channel.once('drain', resolve));
    if (seq % 2_000 === 1_999) await channel.waitForConfirms();
  }
  await channel.waitForConfirms();
  const { messageCount } = await channel.checkQueue(queue);
  if (messageCount !== count) throw new Error(`${queue} holds ${messageCount} messages, expected ${count}`);
}

/** `count` messages into `queue` at `rate` per second, each stamped with its publish time. */
async function publishAtRate(channel: ConfirmChannel, queue: string, count: number, rate: number): Promise<void> {
  const started = now();
  let sent = 0;
  while (sent < count) {
    const due = Math.min(count, Math.floor(((now() - started) * rate) / 1000) + 1);
    while (sent < due) publishOne(channel, queue, sent++);
    await sleep(1);
  }
  await channel.waitForConfirms();
}

interface ThroughputRun {
  rate: number;
  peakRssMb: number;
  cpuMsPer1k: number;
  appCpuMsPer1k: number;
}

/** One throughput run: `count` messages waiting, then the consumer process starts and drains them. */
async function throughputOnce(
  app: App,
  channel: ConfirmChannel,
  side: Side,
  concurrency: number,
  count: number,
): Promise<ThroughputRun> {
  const queue = queueOf(side);
  await preload(channel, queue, count);
  let pid = 0;
  let atFirst = { consumer: usage(0), app: usage(0) };
  const { done } = await app.expect(count, () => {
    atFirst = { consumer: usage(pid), app: usage(app.pid) };
  });
  const { child, ready } = startConsumer(side, concurrency);
  pid = child.pid as number;
  let peakRssMb = 0;
  const sampler = setInterval(() => {
    peakRssMb = Math.max(peakRssMb, usage(pid).rssMb);
  }, 50);
  let result: Done;
  let atLast: typeof atFirst;
  try {
    await ready;
    result = await done;
    atLast = { consumer: usage(pid), app: usage(app.pid) };
  } finally {
    clearInterval(sampler);
    await stopConsumer(child);
  }
  peakRssMb = Math.max(peakRssMb, atLast.consumer.rssMb);
  if (result.unique !== count) throw new Error(`${side}: the app saw ${result.unique} distinct of ${count} messages`);
  const left = await channel.checkQueue(queue);
  if (left.messageCount !== 0) throw new Error(`${side}: ${left.messageCount} messages left unacked in ${queue}`);
  const per1k = (from: number, to: number) => ((to - from) / count) * 1000;
  return {
    rate: (count - 1) / ((result.last - result.first) / 1000),
    peakRssMb,
    cpuMsPer1k: per1k(atFirst.consumer.cpuMs, atLast.consumer.cpuMs),
    appCpuMsPer1k: per1k(atFirst.app.cpuMs, atLast.app.cpuMs),
  };
}

/** One latency run: the consumer idles on an empty queue, then `count` messages come at `rate` per second. */
async function latencyOnce(
  app: App,
  channel: ConfirmChannel,
  side: Side,
  concurrency: number,
  count: number,
  rate: number,
): Promise<number[]> {
  const queue = queueOf(side);
  const { child, ready } = startConsumer(side, concurrency);
  try {
    await ready;
    const warmup = await app.expect(Math.min(count, 1_000));
    await publishAtRate(channel, queue, Math.min(count, 1_000), rate);
    await warmup.done;
    const measured = await app.expect(count);
    await publishAtRate(channel, queue, count, rate);
    return (await measured.done).latencies;
  } finally {
    await stopConsumer(child);
  }
}

/** Leaves no queue or exchange of the benchmark behind (also those of a run that crashed). */
async function cleanUp(channel: ConfirmChannel): Promise<void> {
  for (const queue of [SIDECAR_QUEUE, SIDECAR_DLQ, DIRECT_QUEUE]) await channel.deleteQueue(queue);
  await channel.deleteExchange(TOPIC);
}

const fmtRange = (values: number[], digits = 0) =>
  `${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)}`;

export async function benchPush({
  count = 20_000,
  runs = 5,
  latencyRuns = 3,
  concurrencies = [16, 64],
  latencyCount = 5_000,
  latencyRate = 1_000,
} = {}): Promise<Row[]> {
  const connection = await connect(BROKER);
  const channel = await connection.createConfirmChannel();
  await cleanUp(channel);
  // Declared as the sidecar declares them, so messages can wait in its queue before it starts.
  const classic = { durable: true, arguments: { 'x-queue-type': 'classic' } };
  await channel.assertQueue(SIDECAR_DLQ, classic);
  await channel.assertQueue(SIDECAR_QUEUE, classic);
  await channel.assertExchange(TOPIC, 'topic', { durable: true });
  await channel.bindQueue(SIDECAR_QUEUE, TOPIC, '#');
  await channel.assertQueue(DIRECT_QUEUE, classic);
  const app = await App.start();

  const rows: Row[] = [];
  try {
    for (const concurrency of concurrencies) {
      const results: Record<Side, ThroughputRun[]> = { outrigger: [], direct: [] };
      for (let run = 0; run < runs; run++) {
        const order: Side[] = run % 2 === 0 ? ['direct', 'outrigger'] : ['outrigger', 'direct'];
        for (const side of order) {
          const result = await throughputOnce(app, channel, side, concurrency, count);
          results[side].push(result);
          process.stderr.write(
            `push c=${concurrency} run ${run + 1} ${side}: ${result.rate.toFixed(0)} msg/s, ` +
              `${result.cpuMsPer1k.toFixed(0)} ms CPU per 1000 (app ${result.appCpuMsPer1k.toFixed(0)}), peak RSS ${result.peakRssMb.toFixed(0)} MB\n`,
          );
        }
      }
      const rates = (side: Side) => results[side].map((r) => r.rate);
      const cpu = (side: Side) => median(results[side].map((r) => r.cpuMsPer1k));
      const rss = (side: Side) => Math.max(...results[side].map((r) => r.peakRssMb));
      const ratios = results.outrigger.map((r, i) => r.rate / (results.direct[i]?.rate ?? Number.NaN));
      rows.push({
        name: `push throughput, concurrency ${concurrency} (msg/s)`,
        outrigger: { p50: median(rates('outrigger')) },
        direct: { p50: median(rates('direct')) },
        note:
          `median of ${runs} alternating runs of ${count} queued msgs: range ${fmtRange(rates('outrigger'))} vs ${fmtRange(rates('direct'))}, ` +
          `pair ratios ${fmtRange(ratios, 2)}; CPU ${cpu('outrigger').toFixed(0)} vs ${cpu('direct').toFixed(0)} ms per 1000 msgs; ` +
          `peak RSS ${rss('outrigger').toFixed(0)} vs ${rss('direct').toFixed(0)} MB`,
        target: '>= 0.6x',
      });
    }
    for (const concurrency of concurrencies) {
      const samples: Record<Side, number[][]> = { outrigger: [], direct: [] };
      for (let run = 0; run < latencyRuns; run++) {
        const order: Side[] = run % 2 === 0 ? ['direct', 'outrigger'] : ['outrigger', 'direct'];
        for (const side of order) {
          samples[side].push(await latencyOnce(app, channel, side, concurrency, latencyCount, latencyRate));
          const { p50, p99 } = percentiles(samples[side].at(-1) ?? []);
          process.stderr.write(
            `push latency c=${concurrency} run ${run + 1} ${side}: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms\n`,
          );
        }
      }
      const s = percentiles(samples.outrigger.flat());
      const d = percentiles(samples.direct.flat());
      const perRunP99 = (side: Side) => samples[side].map((run) => percentiles(run).p99);
      rows.push({
        name: `push latency at ${latencyRate} msg/s, concurrency ${concurrency} (ms)`,
        outrigger: s,
        direct: d,
        note:
          `publish to arrival at the app, ${latencyRuns} alternating runs of ${latencyCount} msgs, pooled; ` +
          `added p50 ${(s.p50 - d.p50).toFixed(2)} ms, p99 ${(s.p99 - d.p99).toFixed(2)} ms; ` +
          `per-run p99 ${fmtRange(perRunP99('outrigger'), 1)} vs ${fmtRange(perRunP99('direct'), 1)}`,
        target: 'reported (no target)',
      });
    }
  } finally {
    await app.stop();
    await cleanUp(channel);
    await connection.close();
  }
  return rows;
}

// `node bench/push.ts [messages] [runs] [concurrency,...]`: this benchmark alone (with BENCH_CPU_PROF, to profile).
if (import.meta.main) {
  const [messages, runs, concurrencies] = process.argv.slice(2);
  const { table } = await import('./report.ts');
  const rows = await benchPush({
    ...(messages === undefined ? {} : { count: Number(messages) }),
    ...(runs === undefined ? {} : { runs: Number(runs), latencyRuns: Math.min(3, Number(runs)) }),
    ...(concurrencies === undefined ? {} : { concurrencies: concurrencies.split(',').map(Number) }),
  });
  console.log(table(rows));
}
