// What tracing at 100% sampling costs: publish throughput at 64 in flight
// through a sidecar exporting every span (OTLP/HTTP protobuf to a receiver
// in its own process) beside an identical sidecar without tracing, same run,
// alternating.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'amqplib';
import { Pool } from 'undici';
import { percentiles, type Row } from './report.ts';
import { BROKER, spawnSidecar, untilReady } from './sidecar.ts';

const TOPIC = 'bench.tracing';
const BODY = Buffer.from(JSON.stringify({ sensor: 'sensor-1', celsius: 21.5, at: '2026-01-01T00:00:00Z' }));
const ROUNDS = 3;

/** An OTLP receiver that reads and drops every export, as a collector's receiver would take it. */
async function startSink(): Promise<{ endpoint: string; child: ChildProcess }> {
  const script = `
    const server = require('node:http').createServer((request, response) => {
      request.resume();
      request.on('end', () => response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
    });
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(child.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  return { endpoint: `http://127.0.0.1:${chunk.toString().trim()}`, child };
}

const cpuMs = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
};

async function rate(api: string, pid: number, count: number) {
  const pool = new Pool(api, { connections: 64, pipelining: 1 });
  const once = async () => {
    const response = await pool.request({
      method: 'POST',
      path: `/v1/publish/${TOPIC}`,
      headers: { 'content-type': 'application/json' },
      body: BODY,
    });
    await response.body.dump();
    if (response.statusCode !== 202) throw new Error(`sidecar answered ${response.statusCode}`);
  };
  let next = 0;
  const drive = (n: number) =>
    Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < n) {
          next += 1;
          await once();
        }
      }),
    );
  await drive(1_000); // warm
  next = 0;
  const cpu0 = cpuMs(pid);
  const started = performance.now();
  await drive(count);
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return { rate: count / seconds, cpuPerMsgUs: ((cpuMs(pid) - cpu0) * 1000) / count };
}

export async function benchTracing({ count = 20_000 } = {}): Promise<Row[]> {
  const connection = await connect(BROKER);
  const setup = await connection.createChannel();
  await setup.assertExchange(TOPIC, 'topic', { durable: true });
  const { queue } = await setup.assertQueue('bench.tracing.sink', { durable: true });
  await setup.bindQueue(queue, TOPIC, '#');
  const sink = await startSink();
  const plain = spawnSidecar({ http: 19620, ops: 19621 });
  const traced = spawnSidecar(
    { http: 19622, ops: 19623 },
    { env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint, OTEL_TRACES_SAMPLER: 'always_on' } },
  );
  await untilReady(19621);
  await untilReady(19623);
  type Run = { rate: number; cpuPerMsgUs: number };
  const runs: { plain: Run[]; traced: Run[] } = { plain: [], traced: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? (['plain', 'traced'] as const) : (['traced', 'plain'] as const);
    for (const which of order) {
      const child = which === 'plain' ? plain : traced;
      const port = which === 'plain' ? 19620 : 19622;
      runs[which].push(await rate(`http://127.0.0.1:${port}`, child.pid as number, count));
      await setup.purgeQueue(queue);
      process.stderr.write(`tracing: ${which} ${runs[which].at(-1)?.rate.toFixed(0)} msg/s\n`);
    }
  }
  for (const child of [plain, traced]) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  sink.child.kill();
  await setup.deleteQueue(queue);
  await connection.close();

  const median = (values: number[]) => percentiles(values).p50;
  const cpu = (which: 'plain' | 'traced') => median(runs[which].map((r) => r.cpuPerMsgUs)).toFixed(0);
  const pairs = runs.traced.map((r, i) => (r.rate / (runs.plain[i]?.rate ?? Number.NaN)).toFixed(2));
  return [
    {
      name: 'publish throughput, 64 in flight, tracing at 100% (msg/s)',
      outrigger: { p50: median(runs.traced.map((r) => r.rate)) },
      direct: { p50: median(runs.plain.map((r) => r.rate)) },
      note: `direct = the same sidecar without tracing; median of ${ROUNDS} alternating runs of ${count} msgs, pair ratios ${pairs.join(', ')}; sidecar CPU ${cpu('traced')} vs ${cpu('plain')} µs/msg; 2 spans per publish exported as OTLP protobuf`,
      target: '>= 0.85x',
    },
  ];
}
