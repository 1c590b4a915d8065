// Starting the built sidecar for a benchmark, as a separate process.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = new URL('../sidecar/dist/cli/main.js', import.meta.url).pathname;
export const BROKER = process.env.OUTRIGGER_BROKER_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** `outrigger sidecar` with app id "bench" on the given ports, logging warnings only. */
export function spawnSidecar(ports: { http: number; ops: number }): ChildProcess {
  const config = join(mkdtempSync(join(tmpdir(), 'outrigger-bench-')), 'outrigger.yaml');
  const settings = { appId: 'bench', broker: { url: BROKER }, http: { port: ports.http }, ops: { port: ports.ops } };
  writeFileSync(config, JSON.stringify({ ...settings, log: { level: 'warn' } }));
  return spawn(process.execPath, [CLI, 'sidecar', '--config', config], { stdio: 'ignore' });
}
