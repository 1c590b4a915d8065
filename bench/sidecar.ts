// Starting the built sidecar for a benchmark, as a separate process.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROXY_VARIABLES } from '../sidecar/src/outbound/egress-proxy.ts';

/** The `outrigger` launcher, so the sidecar runs with the Node flags it ships with. */
const CLI = new URL('../sidecar/bin/outrigger', import.meta.url).pathname;
export const BROKER = process.env.OUTRIGGER_BROKER_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export interface SidecarExtras {
  /** More configuration (app, subscriptions, ...), merged over the defaults. */
  config?: Record<string, unknown>;
  /** Flags for node itself, e.g. `--cpu-prof` (passed in NODE_OPTIONS). */
  nodeArgs?: string[];
  /** More environment (OTEL_* for tracing, say). */
  env?: Record<string, string>;
}

/** The environment without the machine's egress proxy: every upstream here is on loopback. */
function withoutProxy(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const rest = { ...env };
  for (const name of PROXY_VARIABLES) delete rest[name];
  return rest;
}

/** `outrigger sidecar` with app id "bench" on the given ports, logging warnings only. */
export function spawnSidecar(ports: { http: number; ops: number }, extras: SidecarExtras = {}): ChildProcess {
  const config = join(mkdtempSync(join(tmpdir(), 'outrigger-bench-')), 'outrigger.yaml');
  const settings = { appId: 'bench', broker: { url: BROKER }, http: { port: ports.http }, ops: { port: ports.ops } };
  writeFileSync(config, JSON.stringify({ ...settings, log: { level: 'warn' }, ...extras.config }));
  const nodeOptions = [process.env.NODE_OPTIONS, ...(extras.nodeArgs ?? [])].filter(Boolean).join(' ');
  return spawn(CLI, ['sidecar', '--config', config], {
    stdio: 'ignore',
    env: { ...withoutProxy(process.env), ...extras.env, NODE_OPTIONS: nodeOptions },
  });
}

export interface Polling {
  /** Give up after this long (ms). */
  limitMs?: number;
  /** Wait this long between tries (ms); bench/startup.ts times readiness with 2. */
  everyMs?: number;
}

/** Polls the sidecar's `/readyz` until it answers 200; resolves to `performance.now()` when it did. */
export const untilReady = (opsPort: number, polling?: Polling): Promise<number> =>
  untilOk(`http://127.0.0.1:${opsPort}/readyz`, 'the sidecar was not ready', polling);

/** Polls the app API until it answers (outbound calls need no broker, so no readiness). */
export const untilListening = (httpPort: number, polling?: Polling): Promise<number> =>
  untilOk(`http://127.0.0.1:${httpPort}/v1/metadata`, 'the sidecar was not listening', polling);

const untilOk = (url: string, failure: string, polling?: Polling): Promise<number> =>
  pollUntil(async () => (await fetch(url)).status === 200, failure, polling);

/** Tries `probe` until it resolves true (a rejection counts as false); resolves to `performance.now()` at that moment. */
export async function pollUntil(
  probe: () => Promise<boolean>,
  failure: string,
  { limitMs = 10_000, everyMs = 10 }: Polling = {},
): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < limitMs) {
    if (await probe().catch(() => false)) return performance.now();
    await sleep(everyMs);
  }
  throw new Error(`${failure} within ${limitMs} ms`);
}
