// Starts the built CLI (`sidecar/dist/cli/main.js`) as a real process, the way
// a pod or `make demo` does, and reads where it listens from its JSON log.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { PROXY_VARIABLES } from '../../src/outbound/egress-proxy.ts';
import { until } from './wait.ts';

export const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliProcess {
  child: ChildProcess;
  /** Every JSON log line written so far. */
  logs: Record<string, unknown>[];
  stdout: () => string;
  stderr: () => string;
  exited: Promise<Exit>;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
}

export interface SidecarProcess extends CliProcess {
  api: string;
  ops: string;
}

/** Writes `config` as a file (JSON is YAML) and returns its path; removed when the test ends. */
export function configFile(t: Test, config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'outrigger-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'outrigger.yaml');
  writeFileSync(path, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return path;
}

/**
 * The test process's environment without a proxy of the machine's: the tests'
 * upstreams are on loopback, where a developer's or CI's proxy cannot reach them.
 * A test that wants a proxy sets one.
 */
export function testEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of PROXY_VARIABLES) delete env[name];
  return env;
}

/** Runs `outrigger ARGS...`; the process is killed when the test ends. */
export function runCli(t: Test, args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...testEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const logs: Record<string, unknown>[] = [];
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const start = out.lastIndexOf('\n') + 1;
    out += chunk;
    const complete = out.slice(start, out.lastIndexOf('\n') + 1);
    for (const line of complete.split('\n')) {
      if (line.startsWith('{')) logs.push(JSON.parse(line));
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }) as Exit);
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    logs,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      child.kill(signal);
      return exited;
    },
  };
}

/**
 * Rejects when the process exits, with its exit and stderr: for `until`'s
 * `failOn`, so a process that dies while a test waits for it fails the wait at
 * once. Never resolves.
 */
export function exitFailure(cli: CliProcess, name: string): Promise<never> {
  return cli.exited.then(async ({ code, signal }) => {
    // 'exit' can come before the last of stderr: wait for the stream to end.
    const stderr = cli.child.stderr;
    if (stderr && !stderr.closed) await once(stderr, 'close').catch(() => {});
    throw new Error(`${name} exited (${signal ?? `code ${code}`}): ${cli.stderr()}`);
  });
}

/**
 * Starts `outrigger sidecar` on free loopback ports and waits until it listens.
 * The caller's `http` and `ops` win; `ops: { host: undefined }` leaves the ops
 * host out of the file, for the shipped default (0.0.0.0).
 */
export async function startSidecar(
  t: Test,
  config: Record<string, unknown>,
  env: Record<string, string> = {},
): Promise<SidecarProcess> {
  // The ops port listens on 0.0.0.0 unless told; the app API on localhost (loopback) by default.
  const withPorts = {
    ...config,
    http: { port: 0, ...(config.http as object) },
    ops: { port: 0, host: '127.0.0.1', ...(config.ops as object) },
  };
  const cli = runCli(t, ['sidecar', '--config', configFile(t, withPorts)], env);
  const started = await until(
    'the sidecar to log "sidecar started"',
    () => cli.logs.find((line) => line.msg === 'sidecar started'),
    { timeoutMs: 10_000, failOn: exitFailure(cli, 'the sidecar') },
  );
  return { ...cli, api: started.api as string, ops: started.ops as string };
}
