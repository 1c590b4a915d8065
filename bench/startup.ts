// Startup-to-ready time and idle RSS of the sidecar, beside the floor: a bare
// Node process that opens one amqplib connection to the same broker.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { usage } from './load.ts';
import { percentiles, type Row } from './report.ts';
import { BROKER, spawnSidecar } from './sidecar.ts';

const root = new URL('..', import.meta.url).pathname;

async function readyAfter(probe: () => Promise<boolean>, started: number, limitMs = 10_000): Promise<number> {
  while (Date.now() - started < limitMs) {
    if (await probe().catch(() => false)) return performance.now();
    await sleep(2);
  }
  throw new Error('not ready in time');
}

/** One sidecar start: ms from spawn to /readyz 200, and RSS after `idleMs` of idling. */
async function sidecarOnce(opsPort: number, idleMs: number) {
  const t0 = performance.now();
  const child = spawnSidecar({ http: 0, ops: opsPort });
  const ready = await readyAfter(
    async () => (await fetch(`http://127.0.0.1:${opsPort}/readyz`)).status === 200,
    Date.now(),
  );
  await sleep(idleMs);
  const rssMb = usage(child.pid as number).rssMb;
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  return { readyMs: ready - t0, rssMb };
}

/** The floor: node + amqplib connect, nothing else. */
async function rawOnce(idleMs: number) {
  const script = `import { connect } from 'amqplib'; const c = await connect(${JSON.stringify(BROKER)}); console.log('ready'); process.on('SIGTERM', async () => { await c.close(); process.exit(0); });`;
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: `${root}sidecar`,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout?.on('data', (chunk) => {
    out += chunk;
  });
  const ready = await readyAfter(async () => out.includes('ready'), Date.now());
  await sleep(idleMs);
  const rssMb = usage(child.pid as number).rssMb;
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  return { readyMs: ready - t0, rssMb };
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
