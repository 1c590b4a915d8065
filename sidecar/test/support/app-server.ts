// A real HTTP app for push tests: records every request it gets and answers
// with whatever the test's handler says.
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import { freePort } from './ports.ts';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

export type Handler = (request: Received, response: ServerResponse) => void;

export interface TestApp {
  port: number;
  received: Received[];
  /** Replaces the handler; the default answers 200. */
  handle(handler: Handler): void;
  /** Stops listening and drops open connections (the app crashed). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
}

export const answer =
  (status: number, headers: Record<string, string> = {}): Handler =>
  (_request, response) => {
    response.writeHead(status, headers).end(status >= 300 ? `status ${status}` : '');
  };

/** An app on 127.0.0.1 (a free port, or `port`), not listening until `start()` when `listening` is false. */
export async function startApp(t: Test, { listening = true, port = 0 } = {}): Promise<TestApp> {
  let handler: Handler = answer(200);
  const received: Received[] = [];
  let server: Server | undefined;
  let chosenPort = port;
  const app: TestApp = {
    get port() {
      return chosenPort;
    },
    received,
    handle(next) {
      handler = next;
    },
    async start() {
      server = createServer((request, response) => {
        const chunks: Buffer[] = [];
        request.on('data', (chunk: Buffer) => chunks.push(chunk));
        request.on('end', () => {
          const entry = {
            path: request.url ?? '',
            headers: request.headers,
            body: Buffer.concat(chunks),
            at: Date.now(),
          };
          received.push(entry);
          handler(entry, response);
        });
      });
      await new Promise<void>((resolve) => server?.listen(chosenPort, '127.0.0.1', resolve));
      chosenPort = (server.address() as AddressInfo).port;
    },
    async stop() {
      const stopping = server;
      server = undefined;
      if (stopping === undefined) return;
      stopping.closeAllConnections();
      await new Promise((resolve) => stopping.close(resolve));
    },
  };
  if (listening) await app.start();
  else if (port === 0) chosenPort = await freePort();
  t.teardown(() => app.stop());
  return app;
}
