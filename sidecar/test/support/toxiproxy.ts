// A Toxiproxy server of the test's own (built by `make tools` into
// .tools/bin), on a free loopback port, driven through its HTTP API and
// killed at the end of the test.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Test } from 'tap';
import { freePort } from './ports.ts';
import { until } from './wait.ts';

export const TOXIPROXY_SERVER = new URL('../../../.tools/bin/toxiproxy-server', import.meta.url).pathname;

export interface Toxic {
  type: 'latency' | 'reset_peer' | 'timeout' | 'bandwidth' | 'slow_close' | 'limit_data' | 'slicer';
  stream?: 'upstream' | 'downstream';
  toxicity?: number;
  attributes: Record<string, number>;
}

export interface Proxy {
  name: string;
  /** The port the proxy listens on (127.0.0.1). */
  port: number;
  addToxic(name: string, toxic: Toxic): Promise<void>;
  removeToxic(name: string): Promise<void>;
  /** Stops accepting and drops connections (like a host going away) or brings the proxy back. */
  setEnabled(enabled: boolean): Promise<void>;
}

export interface Toxiproxy {
  proxy(name: string, upstreamPort: number): Promise<Proxy>;
}

export async function startToxiproxy(t: Test): Promise<Toxiproxy> {
  if (!existsSync(TOXIPROXY_SERVER)) throw new Error(`${TOXIPROXY_SERVER} is missing: run \`make tools\``);
  const port = await freePort();
  const child: ChildProcess = spawn(TOXIPROXY_SERVER, ['-host', '127.0.0.1', '-port', String(port)], {
    stdio: 'ignore',
  });
  t.teardown(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  });
  const api = `http://127.0.0.1:${port}`;
  await until('toxiproxy-server', async () => (await fetch(`${api}/version`)).ok, { timeoutMs: 10_000 });

  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${api}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`toxiproxy ${method} ${path}: ${response.status} ${text}`);
    return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  };

  return {
    async proxy(name, upstreamPort) {
      const created = await call('POST', '/proxies', {
        name,
        listen: '127.0.0.1:0',
        upstream: `127.0.0.1:${upstreamPort}`,
        enabled: true,
      });
      const listenPort = Number(String(created.listen).split(':').pop());
      return {
        name,
        port: listenPort,
        addToxic: async (toxicName, toxic) => {
          await call('POST', `/proxies/${name}/toxics`, {
            name: toxicName,
            stream: 'downstream',
            toxicity: 1,
            ...toxic,
          });
        },
        removeToxic: async (toxicName) => {
          await call('DELETE', `/proxies/${name}/toxics/${toxicName}`);
        },
        setEnabled: async (enabled) => {
          // Keep the same listen port when enabling again.
          await call('POST', `/proxies/${name}`, { enabled, listen: `127.0.0.1:${listenPort}` });
        },
      };
    },
  };
}
