// A real forward proxy for tests: Debian's tinyproxy (installed by
// scripts/bootstrap/services.sh), run in the foreground on a free loopback
// port with a config of the test's own, and stopped when the test ends. Its
// log (LogLevel Connect) shows every CONNECT and forwarded request line.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { freePort } from './ports.ts';
import { until } from './wait.ts';

export const TINYPROXY = '/usr/bin/tinyproxy';

export interface Tinyproxy {
  port: number;
  /** `http://[user:password@]127.0.0.1:port` */
  url: (credentials?: string) => string;
  /** The request lines it logged so far (`CONNECT 127.0.0.1:443 HTTP/1.1`, `GET http://... HTTP/1.1`). */
  requests: () => string[];
}

/** Starts tinyproxy; `basicAuth` (`user pass`) makes it require those credentials. */
export async function startTinyproxy(t: Test, { basicAuth }: { basicAuth?: string } = {}): Promise<Tinyproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'outrigger-tinyproxy-'));
  const port = await freePort();
  const log = join(dir, 'tinyproxy.log');
  const lines = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 30',
    'Allow 127.0.0.1',
    // No ConnectPort lines: CONNECT to any port (the targets listen on free ones).
    `LogFile "${log}"`,
    'LogLevel Connect',
    `PidFile "${join(dir, 'tinyproxy.pid')}"`,
    ...(basicAuth === undefined ? [] : [`BasicAuth ${basicAuth}`]),
  ];
  const config = join(dir, 'tinyproxy.conf');
  writeFileSync(config, `${lines.join('\n')}\n`);
  const child: ChildProcess = spawn(TINYPROXY, ['-d', '-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = once(child, 'exit');
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  await until('tinyproxy to listen', () => accepts(port), {
    timeoutMs: 10_000,
    failOn: exited.then(([code]) => {
      throw new Error(`tinyproxy exited (code ${code}): ${stderr}`);
    }),
  });
  return {
    port,
    url: (credentials) => `http://${credentials === undefined ? '' : `${credentials}@`}127.0.0.1:${port}`,
    requests: () => {
      let text = '';
      try {
        text = readFileSync(log, 'utf8');
      } catch {}
      return [...text.matchAll(/Request \(file descriptor \d+\): (.*)$/gm)].map((match) => match[1] ?? '');
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
