// Outbound calls through the sidecar (app -> /v1/outbound/{target}/... ->
// target) beside raw undici calling the same upstream, same run, same client
// library (the sidecar's undici). The upstream is a tiny node:http server in
// a process of its own (bench/outbound-upstream.ts); the sidecar runs from its
// launcher. The floor (bench/floor.ts, a bare node:http + undici proxy) runs
// beside it, so the table tells what any Node proxy costs here from what the
// sidecar adds. Latency: one call in flight, in blocks whose order rotates,
// so drift, and whatever one side leaves behind for the next, hits every
// side alike. Throughput: 64 in flight, alternating runs; then again with
// the sidecar (and the floor, in turn) on a core of its own and the client
// and the upstream on the other, as a pod gives its sidecar CPU of its own.
//
// `make bench` runs it with the others; `node bench/outbound.ts [calls]` alone.
// BENCH_CPU_PROF=<dir> writes a V8 CPU profile of the sidecar there
// (summarise with `node bench/cpu-profile.ts <file>`).
import type { ChildProcess } from 'node:child_process';
import { cannotPin, withOwnCore } from './cores.ts';
import { forkListening, startFloor } from './floor-process.ts';
import { drive, interleaved, type Rounds, throughputRounds } from './load.ts';
import { floorFigures, percentiles, type Row, type Stats, throughputRow, throughputRows } from './report.ts';
import { spawnSidecar, untilListening } from './sidecar.ts';
import { Pool } from './undici.ts';

const PORTS = { upstream: 19_620, http: 19_621, ops: 19_622, floor: 19_623 };
const PATH = '/orders/order-1?expand=items';
const PROFILE_DIR = process.env.BENCH_CPU_PROF;

/** The upstream in a process of its own, on `port`. */
export const startUpstream = (port = PORTS.upstream): Promise<ChildProcess> =>
  forkListening(new URL('./outbound-upstream.ts', import.meta.url), [String(port)]);

export async function benchOutbound({
  sequential = 5_000,
  concurrent = 20_000,
  blocks = 6,
  runs = 3,
} = {}): Promise<Row[]> {
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
  const floor = await startFloor('proxy', PORTS.floor, `http://127.0.0.1:${PORTS.upstream}`);
  const pools: InstanceType<typeof Pool>[] = [];
  const caller = (port: number, path: string) => {
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 64, pipelining: 1 });
    pools.push(pool);
    return async () => {
      const response = await pool.request({ method: 'GET', path, headers: { accept: 'application/json' } });
      await response.body.dump();
      if (response.statusCode !== 200) throw new Error(`answered ${response.statusCode}`);
    };
  };
  try {
    await untilListening(PORTS.http);
    const rawOnce = caller(PORTS.upstream, `/api${PATH}`);
    const sidecarOnce = caller(PORTS.http, `/v1/outbound/orders${PATH}`);
    const floorOnce = caller(PORTS.floor, `/v1/outbound/orders${PATH}`);

    // Warm every path (JIT, connections), then alternate blocks of sequential calls.
    for (const once of [rawOnce, sidecarOnce, floorOnce]) await drive(2_000, 8, once);
    const latencies = await interleaved({ raw: rawOnce, sidecar: sidecarOnce, floor: floorOnce }, sequential, blocks);
    const sides = {
      runs,
      count: concurrent,
      direct: rawOnce,
      sidecar: { pid: sidecar.pid as number, once: sidecarOnce },
      floor: { pid: floor.pid as number, once: floorOnce },
    };
    const rounds = await throughputRounds(sides);
    const unpinnable = cannotPin();
    const pinned =
      unpinnable === undefined
        ? await withOwnCore([sides.sidecar.pid, sides.floor.pid], [upstream.pid as number], async () => {
            // Moved to other cores, every process runs its first thousands of calls slower.
            for (const once of [rawOnce, sidecarOnce, floorOnce]) await drive(concurrent / 2, 64, once);
            return throughputRounds(sides);
          })
        : undefined;

    const r = percentiles(latencies.raw);
    const s = percentiles(latencies.sidecar);
    const f = percentiles(latencies.floor);
    const added = (side: Required<Stats>, q: 'p50' | 'p90' | 'p99') => (side[q] - r[q]).toFixed(3);
    return [
      {
        name: 'outbound GET latency, 1 in flight (ms)',
        outrigger: s,
        direct: r,
        note: `${sequential} calls each, in ${blocks} blocks each, the order of the sides rotated from block to block; added p50 ${added(s, 'p50')} ms, p90 ${added(s, 'p90')} ms, p99 ${added(s, 'p99')} ms; the floor (a bare node:http + undici proxy, bench/floor.ts) adds p50 ${added(f, 'p50')} ms, p99 ${added(f, 'p99')} ms`,
        target: 'added p50 <= 0.2 ms, p99 <= 1 ms',
      },
      ...throughputRows({
        name: 'outbound GET throughput, 64 in flight (calls/s)',
        floor: 'a bare node:http + undici proxy',
        direct: 'raw undici',
        unit: 'call',
        target: '>= 0.75x',
        runs,
        count: concurrent,
        rounds,
        extra: `sidecar peak RSS ${rounds.peakRss.all.toFixed(0)} MB`,
      }),
      ownCoreRow(pinned, unpinnable, runs, concurrent),
    ];
  } finally {
    await Promise.all(pools.map((pool) => pool.close()));
    floor.send({ type: 'stop' });
    sidecar.kill('SIGTERM');
    await new Promise((resolve) => sidecar.once('exit', resolve));
    upstream.send({ type: 'stop' });
    await new Promise((resolve) => upstream.once('exit', resolve));
  }
}

/** Throughput with the sidecar on a core of its own: the pod's case, where its container has CPU of its own. */
function ownCoreRow(rounds: Rounds | undefined, unpinnable: string | undefined, runs: number, count: number): Row {
  const name = 'outbound GET throughput, 64 in flight, the sidecar on a core of its own (calls/s)';
  const target = '>= 0.75x';
  if (rounds === undefined) {
    return {
      name,
      outrigger: { p50: Number.NaN },
      direct: { p50: Number.NaN },
      note: `not run: ${unpinnable}`,
      target,
    };
  }
  const floor = floorFigures(rounds);
  return throughputRow({
    name,
    unit: 'call',
    target,
    runs,
    count,
    rounds,
    before: 'the client and the upstream on the other core (taskset, bench/cores.ts), for every side; ',
    after: `the floor, on the same core in its turn, reaches ${floor.ratio} with ${floor.cpuUs} µs`,
  });
}

if (import.meta.main) {
  const [calls] = process.argv.slice(2);
  const { table } = await import('./report.ts');
  const rows = await benchOutbound(
    calls === undefined ? {} : { sequential: Number(calls), concurrent: Number(calls) * 4 },
  );
  console.log(table(rows));
}
