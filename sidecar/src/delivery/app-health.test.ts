// The app's health check against a real HTTP app on loopback: readiness's
// `app` check and the outrigger_app_healthy gauge follow it, and the check's
// detail says what the app did (its status, no answer in time, or why the
// connection failed), so a pod that is not ready tells why.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { until } from '../../test/support/wait.ts';
import { createLogger } from '../telemetry/logger.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { AppClient } from './app-client.ts';
import { AppHealth } from './app-health.ts';

const INTERVAL_MS = 200;

t.test("the app check's detail names the status, the time it waited, or the connection error", async (t) => {
  let answer: (response: ServerResponse) => void = (response) => response.writeHead(200).end('ok');
  const server = createServer((_request, response) => answer(response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const client = new AppClient({ host: '127.0.0.1', port, connections: 2 });
  t.teardown(() => client.close());
  const metrics = new Metrics({ version: 'test', appId: 'health' });
  const health = new AppHealth({
    client,
    host: '127.0.0.1',
    port,
    healthPath: '/healthz',
    intervalMs: INTERVAL_MS,
    logger: createLogger('silent'),
    metrics,
  });
  t.teardown(() => health.stop());
  health.start();
  const gauge = async () => /^outrigger_app_healthy (\d)$/m.exec(await metrics.scrape())?.[1];

  const cases: [string, (response: ServerResponse) => void, boolean, RegExp][] = [
    ['200', (response) => response.writeHead(200).end('ok'), true, /^GET \/healthz answered 200$/],
    ['503', (response) => response.writeHead(503).end('down'), false, /^GET \/healthz answered 503 \(not 2xx\)$/],
    [
      'a redirect',
      (response) => response.writeHead(302, { location: '/elsewhere' }).end(),
      false,
      /^GET \/healthz answered 302 \(not 2xx; redirects are not followed\)$/,
    ],
    ['no answer', () => {}, false, /^GET \/healthz did not answer within 200 ms$/],
    [
      'a 200 whose body never ends',
      (response) => response.writeHead(200).write('partial'),
      false,
      /^GET \/healthz answered 200 but did not finish within 200 ms$/,
    ],
    [
      'a 200 with a 512 KiB body',
      (response) => response.writeHead(200).end(Buffer.alloc(512 * 1024, 'x')),
      true,
      /^GET \/healthz answered 200$/,
    ],
    [
      'a 200 whose body streams on and on',
      (response) => {
        response.writeHead(200);
        const chunk = Buffer.alloc(64 * 1024, 'x');
        const pump = () => {
          while (!response.destroyed && response.write(chunk));
        };
        response.on('drain', pump);
        pump();
      },
      false,
      /^GET \/healthz answered 200 but its body ran over 1 MiB$/,
    ],
    ['200 again', (response) => response.writeHead(200).end('ok'), true, /^GET \/healthz answered 200$/],
  ];
  for (const [what, next, ok, detail] of cases) {
    answer = next;
    const result = await until(
      `the check after ${what}`,
      () => {
        const now = health.health.check();
        return detail.test(now.detail) && now;
      },
      { timeoutMs: 3_000 },
    ).catch(() => health.health.check());
    t.match(result, { ok, detail }, what);
    t.equal(await gauge(), ok ? '1' : '0', `${what}: outrigger_app_healthy`);
  }

  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  const refused = await until(
    'the check after the app went away',
    () => {
      const now = health.health.check();
      return /ECONNREFUSED/.test(now.detail) && now;
    },
    { timeoutMs: 3_000 },
  ).catch(() => health.health.check());
  t.match(refused, { ok: false, detail: /^GET \/healthz failed: .*ECONNREFUSED/ }, 'the app is gone');
});
