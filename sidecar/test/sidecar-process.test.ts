// The built CLI as a real process against a real RabbitMQ: start, readiness,
// metrics, broker loss and return, SIGTERM, bad configuration.

import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import t from 'tap';
import { startRabbitNode } from './support/rabbitmq-node.ts';
import { configFile, runCli, startSidecar } from './support/sidecar-process.ts';
import { statusOf, until } from './support/wait.ts';

const SHARED_BROKER = 'amqp://guest:guest@127.0.0.1:5672';

t.test('ready within 2 s of start against the real broker; /metrics scrapeable', async (t) => {
  const started = Date.now();
  const sidecar = await startSidecar(t, { appId: 'ingestion', broker: { url: SHARED_BROKER } });
  await until('/readyz to answer 200', async () => (await statusOf(`${sidecar.ops}/readyz`)) === 200, {
    timeoutMs: 2_000 - (Date.now() - started),
  });
  t.pass(`ready after ${Date.now() - started} ms`);

  t.equal(await statusOf(`${sidecar.ops}/healthz`), 200);
  const ready = await (await fetch(`${sidecar.ops}/readyz`)).json();
  t.match(ready, { status: 'ready', ready: true, checks: { broker: { ok: true } } });

  const response = await fetch(`${sidecar.ops}/metrics`);
  t.match(response.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+|NaN|[+-]Inf$/.test(line))
      t.fail(`not exposition format: ${line}`);
  }
  t.match(text, /^outrigger_build_info\{version="[^"]+",app_id="ingestion"\} 1$/m);
  t.match(text, /^outrigger_broker_connected 1$/m);
  t.match(text, /^outrigger_ready 1$/m);
  t.match(text, /^process_resident_memory_bytes \d+/m);

  const exit = await sidecar.stop('SIGTERM');
  t.same(exit, { code: 0, signal: null }, 'SIGTERM exits 0');
  t.ok(sidecar.logs.some((line) => line.msg === 'sidecar stopped'));
  t.notMatch(sidecar.stdout(), /guest:guest/, 'no credentials in the logs');
});

t.test('broker down: not ready but alive; broker back: ready again', async (t) => {
  const node = await startRabbitNode(t, 'outrigger-test-readiness');
  const sidecar = await startSidecar(t, {
    appId: 'ingestion',
    broker: { url: node.url, reconnect: { initial: '100ms', max: '500ms' } },
  });
  await until('ready', async () => (await statusOf(`${sidecar.ops}/readyz`)) === 200);

  await node.stopApp();
  await until('not ready after the broker stopped', async () => (await statusOf(`${sidecar.ops}/readyz`)) === 503);
  const report = await (await fetch(`${sidecar.ops}/readyz`)).json();
  t.match(report, { ready: false, checks: { broker: { ok: false, detail: /^connecting: / } } });
  t.equal(await statusOf(`${sidecar.ops}/healthz`), 200, 'still alive');
  t.equal(await statusOf(`${sidecar.api}/v1/metadata`), 200, 'the app API still answers');
  t.equal(sidecar.child.exitCode, null, 'the process stays up');

  await node.startApp();
  await until('ready again after the broker came back', async () => (await statusOf(`${sidecar.ops}/readyz`)) === 200, {
    timeoutMs: 15_000,
  });
  const metrics = await (await fetch(`${sidecar.ops}/metrics`)).text();
  t.match(metrics, /^outrigger_broker_connects_total 2$/m, 'one recovery, counted');
  t.same(await sidecar.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('starts and stays up with no broker at all', async (t) => {
  const sidecar = await startSidecar(t, {
    appId: 'ingestion',
    broker: { url: 'amqp://guest:guest@127.0.0.1:1', reconnect: { initial: '50ms', max: '200ms' } },
  });
  t.equal(await statusOf(`${sidecar.ops}/healthz`), 200);
  t.equal(await statusOf(`${sidecar.ops}/readyz`), 503);
  const metadata = (await (await fetch(`${sidecar.api}/v1/metadata`)).json()) as { broker: { state: string } };
  t.equal(metadata.broker.state, 'connecting');
  t.same(await sidecar.stop('SIGINT'), { code: 0, signal: null }, 'SIGINT stops it cleanly too');
});

const external = Object.values(networkInterfaces())
  .flat()
  .find((address) => address?.family === 'IPv4' && !address.internal)?.address;

t.test(
  'the app API is on loopback only; the ops port is reachable from outside',
  {
    skip: external === undefined ? 'this machine has no non-loopback IPv4 address to test from' : false,
  },
  async (t) => {
    const host = external as string;
    // ops.host left out: the shipped default (every interface), not the test helper's loopback.
    const sidecar = await startSidecar(t, {
      appId: 'ingestion',
      broker: { url: SHARED_BROKER },
      ops: { host: undefined },
    });
    const reachable = (host: string, port: number) =>
      new Promise<boolean>((resolve) => {
        const socket = connect({ host, port, timeout: 1_000 });
        socket.once('connect', () => {
          resolve(true);
          socket.destroy();
        });
        socket.once('error', () => resolve(false));
        socket.once('timeout', () => {
          resolve(false);
          socket.destroy();
        });
      });
    const apiPort = Number(new URL(sidecar.api).port);
    const opsPort = Number(new URL(sidecar.ops).port);
    t.equal(await reachable(host, apiPort), false, `app API not reachable on ${host}`);
    t.equal(await reachable('127.0.0.1', apiPort), true);
    t.equal(await reachable(host, opsPort), true, `ops port reachable on ${host}`);
  },
);

t.test('a bad configuration exits 2 with one line naming the field', async (t) => {
  const file = configFile(t, {
    appId: 'ingestion',
    subscriptions: [{ name: 'r', topic: 't', route: '/e', retry: { maxAttempts: 0 } }],
  });
  const cli = runCli(t, ['sidecar', '--config', file], { OUTRIGGER_APP_PORT: '8080' });
  t.same(await cli.exited, { code: 2, signal: null });
  t.equal(cli.stderr(), `outrigger: ${file}: subscriptions[0].retry.maxAttempts: expected a positive integer\n`);
  t.equal(cli.stdout(), '', 'nothing else, no stack trace');

  const badEnv = runCli(t, ['sidecar', '--config', file], { OUTRIGGER_APP_PORT: 'x' });
  t.same(await badEnv.exited, { code: 2, signal: null });
  t.match(badEnv.stderr(), /app\.port \(from OUTRIGGER_APP_PORT\): expected a port number/);

  const missing = runCli(t, ['sidecar', '--config', '/nonexistent/outrigger.yaml']);
  t.same(await missing.exited, { code: 2, signal: null });
  t.equal(missing.stderr(), 'outrigger: /nonexistent/outrigger.yaml: cannot read the file (ENOENT)\n');

  const usage = runCli(t, ['sidecar', '--conf', file]);
  t.same(await usage.exited, { code: 2, signal: null });
  t.match(usage.stderr(), /^outrigger: Unknown option '--conf'/);
});

t.test('a Kubernetes setting it can judge only while starting also exits 2 with one line', async (t) => {
  const dir = t.testdir({
    kubeconfig: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'c',
      contexts: [{ name: 'c', context: { cluster: 'k', user: 'u', namespace: 'shop' } }],
      clusters: [{ name: 'k', cluster: { server: 'https://127.0.0.1:1' } }],
      users: [{ name: 'u', user: { exec: { command: 'aws', apiVersion: 'client.authentication.k8s.io/v1' } } }],
    }),
  });
  const file = configFile(t, { appId: 'ingestion', broker: { url: SHARED_BROKER } });
  const cli = runCli(t, ['sidecar', '--config', file], {
    OUTRIGGER_KUBERNETES: 'true',
    KUBECONFIG: `${dir}/kubeconfig`,
  });
  t.same(await cli.exited, { code: 2, signal: null });
  t.match(
    cli.stderr(),
    /^outrigger: kubernetes\.watch: cannot load a kubeconfig \(.*exec \(a credential plugin\).*\)\n$/,
  );
  t.equal(cli.stderr().split('\n').length, 2, 'one line, no stack trace');
});

t.test('a port in use exits 1 with a clear line', async (t) => {
  const first = await startSidecar(t, { appId: 'ingestion', broker: { url: SHARED_BROKER } });
  const taken = Number(new URL(first.api).port);
  const second = runCli(t, [
    'sidecar',
    '--config',
    configFile(t, { appId: 'other', http: { port: taken }, ops: { port: 0 } }),
  ]);
  t.same(await second.exited, { code: 1, signal: null });
  t.match(second.stderr(), new RegExp(`cannot listen on .*:${taken}: the port is in use`));
});
