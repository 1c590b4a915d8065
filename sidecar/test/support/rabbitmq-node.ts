// A throwaway RabbitMQ node of the test's own (scripts/rabbitmq-node.sh), for
// tests that stop and start a broker without disturbing the shared one.
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import type { Test } from 'tap';

const run = promisify(execFile);
const SCRIPT = new URL('../../../scripts/rabbitmq-node.sh', import.meta.url).pathname;

export interface RabbitNode {
  url: string;
  stopApp(): Promise<void>;
  startApp(): Promise<void>;
  /** `rabbitmqctl list_consumers` etc. against this node. */
  ctl(...args: string[]): Promise<string>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function startRabbitNode(t: Test, name: string): Promise<RabbitNode> {
  const port = await freePort();
  await run('bash', [SCRIPT, 'start', name, String(port)], { timeout: 60_000 });
  t.teardown(() => run('bash', [SCRIPT, 'stop', name, String(port)], { timeout: 60_000 }));
  const ctl = async (...args: string[]) =>
    (await run('rabbitmqctl', ['-n', `${name}@localhost`, ...args], { timeout: 60_000 })).stdout;
  return {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    ctl,
    stopApp: async () => {
      await ctl('stop_app');
    },
    startApp: async () => {
      await ctl('start_app');
      await ctl('await_startup');
    },
  };
}
