// Outbound calls through the sidecar (app -> /v1/outbound/{target}/... ->
// target) beside raw undici calling the same upstream, same run, same client
// library (the sidecar's undici). The upstream is a tiny node:http server in
// a process of its own (bench/outbound-upstream.ts); the sidecar runs from its
// launcher. Latency: one call in flight, interleaved blocks so drift hits both
// sides alike. Throughput: 64 in flight.
//
// `make bench` runs it with the others; `node bench/outbound.ts [calls]` alone.
// BENCH_CPU_PROF=<dir> writes a V8 CPU profile of the sidecar there
// (summarise with `node bench/cpu-profile.ts <file>`).
import { type ChildProcess, fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { drive, usage } from './load.ts';
import { percentiles, type Row } from './report.ts';
import { spawnSidecar } from './sidecar.ts';

const { Pool } = createRequire(new URL('../sidecar/package.json', import.meta.url))(
  'undici',
) as typeof import('undici');

const PORTS = { upstream: 19_620, http: 19_621, ops: 19_622 };
const PATH = '/orders/order-1?expand=items';
const PROFILE_DIR = process.env.BENCH_CPU_PROF;

/** The upstream in a process of its own, on `port`. */
export async function startUpstream(port = PORTS.upstream): Promise<ChildProcess> {
  const child = fork(new URL('./outbound-upstream.ts', import.meta.url).pathname, [String(port)], {
    stdio: 'inherit',
  });
  await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`the upstream exited (${code}) before listening`)));
  });
  return child;
}

/** Waits until the app API answers (the broker is not needed for outbound calls). */
async function untilListening(port: number, limitMs = 10_000): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < limitMs) {
    const status = await fetch(`http://127.0.0.1:${port}/v1/metadata`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    await sleep(10);
  }
  throw new Error(`the sidecar did not listen within ${limitMs} ms`);
}

export async function benchOutbound({ sequential = 5_000, concurrent = 50_000, blocks = 5 } = {}): Promise<Row[]> {
  const upstream = await startUpstream();
  const sidecar = spawnSidecar(
    { http: PORTS.http, ops: PORTS.ops },
    {
      nodeArgs: PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}/outbound`],
      config: {
        targets: [
          {
            name: 'orders',
            baseUrl: `http://127.0.0.1:${PORTS.upstream}/api`,
            timeout: '5s',
            bulkhead: { maxConcurrent: 64, maxQueue: 256 },
          },
        ],
      },
    },
  );
  try {
    await untilListening(PORTS.http);
    const direct = new Pool(`http://127.0.0.1:${PORTS.upstream}`, { connections: 64, pipelining: 1 });
    const viaSidecar = new Pool(`http://127.0.0.1:${PORTS.http}`, { connections: 64, pipelining: 1 });
    const once = (pool: InstanceType<typeof Pool>, path: string) => async () => {
      const response = await pool.request({ method: 'GET', path, headers: { accept: 'application/json' } });
      await response.body.dump();
      if (response.statusCode !== 200) throw new Error(`answered ${response.statusCode}`);
    };
    const rawOnce = once(direct, `/api${PATH}`);
    const sidecarOnce = once(viaSidecar, `/v1/outbound/orders${PATH}`);

    // Warm both paths (JIT, connections), then alternate blocks of sequential calls.
    await drive(2_000, 8, rawOnce);
    await drive(2_000, 8, sidecarOnce);
    const raw: number[] = [];
    const through: number[] = [];
    const block = Math.ceil(sequential / blocks);
    for (let i = 0; i < blocks; i++) {
      raw.push(...(await drive(block, 1, rawOnce)).latencies);
      through.push(...(await drive(block, 1, sidecarOnce)).latencies);
    }
    const rawPar = await drive(concurrent, 64, rawOnce);
    let peakRss = 0;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, usage(sidecar.pid as number).rssMb);
    }, 100);
    const sidecarPar = await drive(concurrent, 64, sidecarOnce);
    clearInterval(sampler);
    await direct.close();
    await viaSidecar.close();

    const r = percentiles(raw);
    const s = percentiles(through);
    const added = (q: 'p50' | 'p90' | 'p99') => (s[q] - r[q]).toFixed(3);
    return [
      {
        name: 'outbound GET latency, 1 in flight (ms)',
        outrigger: s,
        direct: r,
        note: `${sequential} calls each, interleaved in ${blocks} blocks; added p50 ${added('p50')} ms, p90 ${added('p90')} ms, p99 ${added('p99')} ms`,
        target: 'added p50 <= 0.2 ms, p99 <= 1 ms',
      },
      {
        name: 'outbound GET throughput, 64 in flight (calls/s)',
        outrigger: { p50: sidecarPar.rate },
        direct: { p50: rawPar.rate },
        note: `${concurrent} calls each; sidecar peak RSS ${peakRss.toFixed(0)} MB`,
        target: '>= 0.75x',
      },
    ];
  } finally {
    sidecar.kill('SIGTERM');
    await new Promise((resolve) => sidecar.once('exit', resolve));
    upstream.send({ type: 'stop' });
    await new Promise((resolve) => upstream.once('exit', resolve));
  }
}

if (import.meta.main) {
  const [calls] = process.argv.slice(2);
  const { table } = await import('./report.ts');
  const rows = await benchOutbound(
    calls === undefined ? {} : { sequential: Number(calls), concurrent: Number(calls) * 10 },
  );
  console.log(table(rows));
}
