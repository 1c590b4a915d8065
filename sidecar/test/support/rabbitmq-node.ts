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

/**
 * A free AMQP port for a test node in 5700-5799: its Erlang distribution port
 * is PORT + 20000, and ports near 15672 belong to RabbitMQ's command-line tools.
 */
export async function freeNodePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 5700 + ((process.pid + attempt) % 100);
    const server = createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (free) {
      await new Promise((resolve) => server.close(resolve));
      return port;
    }
  }
  throw new Error('no free port in 5700-5799 for a test RabbitMQ node');
}

export async function startRabbitNode(t: Test, name: string): Promise<RabbitNode> {
  const port = await freeNodePort();
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
