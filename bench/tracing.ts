// What tracing at 100% sampling costs: publish and outbound throughput at 64
// in flight through a sidecar exporting every span (OTLP/HTTP protobuf to a
// receiver in its own process) beside an identical sidecar without tracing,
// same run, alternating; beside it, what the SDK alone charges per span
// (bench/span-cost.ts), the floor under that cost.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import { Pool } from 'undici';
import { drive, usage } from './load.ts';
import { startUpstream } from './outbound.ts';
import { median, type Row } from './report.ts';
import { BROKER, spawnSidecar, untilReady } from './sidecar.ts';

const TOPIC = 'bench.tracing';
const BODY = Buffer.from(JSON.stringify({ sensor: 'sensor-1', celsius: 21.5, at: '2026-01-01T00:00:00Z' }));
const ROUNDS = 3;
const PORTS = { plain: 19_640, traced: 19_642, upstream: 19_644 };

interface Call {
  method: 'GET' | 'POST';
  path: string;
  body?: Buffer;
  expect: number;
}

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

async function rate(api: string, pid: number, count: number, call: Call) {
  const pool = new Pool(api, { connections: 64, pipelining: 1 });
  const request = async () => {
    const response = await pool.request({
      method: call.method,
      path: call.path,
      headers: call.body === undefined ? {} : { 'content-type': 'application/json' },
      body: call.body,
    });
    await response.body.dump();
    if (response.statusCode !== call.expect) throw new Error(`sidecar answered ${response.statusCode}`);
  };
  await drive(1_000, 64, request); // warm
  const cpu0 = usage(pid).cpuMs;
  const { rate } = await drive(count, 64, request);
  await pool.close();
  return { rate, cpuPerMsgUs: ((usage(pid).cpuMs - cpu0) * 1000) / count };
}

type Run = { rate: number; cpuPerMsgUs: number };

/** CPU µs per span with the sidecar's SDK setup and nothing else in the process: the median of 3 runs. */
async function sdkCostPerSpan(): Promise<number> {
  const sink = await startSink();
  const script = new URL('./span-cost.ts', import.meta.url).pathname;
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { stdout } = await promisify(execFile)(process.execPath, [script, sink.endpoint]);
    runs.push((JSON.parse(stdout) as { cpuUsPerSpan: number }).cpuUsPerSpan);
  }
  sink.child.kill();
  return median(runs);
}

/** `call` through a plain and a traced sidecar (both with `config`), alternating; the medians as a row. */
async function compare(
  name: string,
  call: Call,
  config: Record<string, unknown>,
  count: number,
  between = async () => {},
) {
  const sink = await startSink();
  const plain = spawnSidecar({ http: PORTS.plain, ops: PORTS.plain + 1 }, { config });
  const traced = spawnSidecar(
    { http: PORTS.traced, ops: PORTS.traced + 1 },
    { config, env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint, OTEL_TRACES_SAMPLER: 'always_on' } },
  );
  await untilReady(PORTS.plain + 1);
  await untilReady(PORTS.traced + 1);
  const runs: { plain: Run[]; traced: Run[] } = { plain: [], traced: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? (['plain', 'traced'] as const) : (['traced', 'plain'] as const);
    for (const which of order) {
      const child = which === 'plain' ? plain : traced;
      runs[which].push(await rate(`http://127.0.0.1:${PORTS[which]}`, child.pid as number, count, call));
      await between();
      process.stderr.write(`tracing: ${name} ${which} ${runs[which].at(-1)?.rate.toFixed(0)}/s\n`);
    }
  }
  for (const child of [plain, traced]) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  sink.child.kill();
  const cpu = (which: 'plain' | 'traced') => median(runs[which].map((r) => r.cpuPerMsgUs)).toFixed(0);
  const spanUs = await sdkCostPerSpan();
  const allowed = 0.15 * Number(cpu('plain'));
  const pairs = runs.traced.map((r, i) => (r.rate / (runs.plain[i]?.rate ?? Number.NaN)).toFixed(2));
  return {
    name,
    outrigger: { p50: median(runs.traced.map((r) => r.rate)) },
    direct: { p50: median(runs.plain.map((r) => r.rate)) },
    note: `direct = the same sidecar without tracing; median of ${ROUNDS} alternating runs of ${count}, pair ratios ${pairs.join(', ')}; sidecar CPU ${cpu('traced')} vs ${cpu('plain')} µs per call; spans exported as OTLP protobuf; the SDK alone costs ${spanUs.toFixed(1)} µs CPU per span (bench/span-cost.ts), a call makes 2 (SERVER + ${name.startsWith('publish') ? 'PRODUCER' : 'CLIENT'}): ${(2 * spanUs).toFixed(0)} µs where 15% of the call is ${allowed.toFixed(0)} µs`,
    target: '>= 0.85x',
  };
}

export async function benchTracing({ count = 20_000 } = {}): Promise<Row[]> {
  const connection = await connect(BROKER);
  const setup = await connection.createChannel();
  await setup.assertExchange(TOPIC, 'topic', { durable: true });
  const { queue } = await setup.assertQueue('bench.tracing.sink', { durable: true });
  await setup.bindQueue(queue, TOPIC, '#');
  const publish = await compare(
    'publish throughput, 64 in flight, tracing at 100% (msg/s)',
    { method: 'POST', path: `/v1/publish/${TOPIC}`, body: BODY, expect: 202 },
    {},
    count,
    async () => {
      await setup.purgeQueue(queue);
    },
  );
  await setup.deleteQueue(queue);
  await connection.close();

  const upstream = await startUpstream(PORTS.upstream);
  const outbound = await compare(
    'outbound GET throughput, 64 in flight, tracing at 100% (calls/s)',
    { method: 'GET', path: '/v1/outbound/orders/orders/order-1', expect: 200 },
    { targets: [{ name: 'orders', baseUrl: `http://127.0.0.1:${PORTS.upstream}` }] },
    count,
  );
  upstream.kill();
  return [publish, outbound];
}

if (import.meta.main) {
  const { table } = await import('./report.ts');
  console.log(table(await benchTracing()));
}
