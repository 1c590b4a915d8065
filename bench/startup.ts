// Startup-to-ready time and idle RSS of the sidecar, beside the floor: a bare
// Node process that opens one amqplib connection to the same broker.
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { usage } from './load.ts';
import { percentiles, type Row } from './report.ts';
import { BROKER, pollUntil, spawnSidecar, untilReady } from './sidecar.ts';

const root = new URL('..', import.meta.url).pathname;

/**
 * One cold start: ms from just before `start` to the moment `ready` saw it ready
 * (polled every 2 ms), and its RSS after `idleMs` of idling; then stopped (SIGTERM).
 */
async function coldStart(start: () => ChildProcess, ready: (child: ChildProcess) => Promise<number>, idleMs: number) {
  const t0 = performance.now();
  const child = start();
  const readyAt = await ready(child);
  await sleep(idleMs);
  const rssMb = usage(child.pid as number).rssMb;
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  return { readyMs: readyAt - t0, rssMb };
}

/** One sidecar start: ready is /readyz answering 200. */
const sidecarOnce = (opsPort: number, idleMs: number) =>
  coldStart(
    () => spawnSidecar({ http: 0, ops: opsPort }),
    () => untilReady(opsPort, { everyMs: 2 }),
    idleMs,
  );

/** The floor: node + amqplib connect, nothing else; ready is its "ready" on stdout. */
function rawOnce(idleMs: number) {
  const script = `import { connect } from 'amqplib'; const c = await connect(${JSON.stringify(BROKER)}); console.log('ready'); process.on('SIGTERM', async () => { await c.close(); process.exit(0); });`;
  return coldStart(
    () =>
      spawn(process.execPath, ['--input-type=module', '-e', script], {
        cwd: `${root}sidecar`,
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    (child) => {
      let out = '';
      child.stdout?.on('data', (chunk) => {
        out += chunk;
      });
      return pollUntil(async () => out.includes('ready'), 'the floor was not ready', { everyMs: 2 });
    },
    idleMs,
  );
}

export async function benchStartup({ runs = 10, idleMs = 3_000 } = {}): Promise<Row[]> {
  const sidecar: { readyMs: number; rssMb: number }[] = [];
  const raw: { readyMs: number; rssMb: number }[] = [];
  for (let i = 0; i < runs; i++) {
    raw.push(await rawOnce(i === 0 ? idleMs : 0));
    sidecar.push(await sidecarOnce(19_464, i === 0 ? idleMs : 0));
  }
  const ready = percentiles(sidecar.map((s) => s.readyMs));
  const rawReady = percentiles(raw.map((s) => s.readyMs));
  return [
    {
      name: 'startup to ready (ms)',
      outrigger: ready,
      direct: rawReady,
      note: `${runs} cold starts each; direct = node + one amqplib connection`,
      target: 'p50 <= 500 ms',
    },
    {
      name: `idle RSS after ${idleMs / 1000} s (MB)`,
      outrigger: { p50: sidecar[0]?.rssMb ?? 0 },
      direct: { p50: raw[0]?.rssMb ?? 0 },
      note: 'resident set of the process, from /proc',
      target: '<= 60 MB',
    },
  ];
}
