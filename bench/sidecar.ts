// Starting the built sidecar for a benchmark, as a separate process.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

/** `outrigger sidecar` with app id "bench" on the given ports, logging warnings only. */
export function spawnSidecar(ports: { http: number; ops: number }, extras: SidecarExtras = {}): ChildProcess {
  const config = join(mkdtempSync(join(tmpdir(), 'outrigger-bench-')), 'outrigger.yaml');
  const settings = { appId: 'bench', broker: { url: BROKER }, http: { port: ports.http }, ops: { port: ports.ops } };
  writeFileSync(config, JSON.stringify({ ...settings, log: { level: 'warn' }, ...extras.config }));
  const nodeOptions = [process.env.NODE_OPTIONS, ...(extras.nodeArgs ?? [])].filter(Boolean).join(' ');
  return spawn(CLI, ['sidecar', '--config', config], {
    stdio: 'ignore',
    env: { ...process.env, ...extras.env, NODE_OPTIONS: nodeOptions },
  });
}

/** Polls the sidecar's `/readyz` until it answers 200 (at most `limitMs`). */
export const untilReady = (opsPort: number, limitMs = 10_000): Promise<void> =>
  untilOk(`http://127.0.0.1:${opsPort}/readyz`, 'ready', limitMs);

/** Polls the app API until it answers (outbound calls need no broker, so no readiness). */
export const untilListening = (httpPort: number, limitMs = 10_000): Promise<void> =>
  untilOk(`http://127.0.0.1:${httpPort}/v1/metadata`, 'listening', limitMs);

async function untilOk(url: string, what: string, limitMs: number): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < limitMs) {
    const status = await fetch(url).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`the sidecar was not ${what} within ${limitMs} ms`);
}
