// `outrigger run -- COMMAND`: the app runs beside its own sidecar, like a pod.
import t from 'tap';
import { configFile, runCli } from './support/sidecar-process.ts';
import { until } from './support/wait.ts';

const config = { appId: 'reporter', app: { port: 18080 }, http: { port: 0 }, ops: { port: 0 } };
const node = process.execPath;

t.test('the app gets OUTRIGGER_URL and PORT, and run exits with its code', async (t) => {
  const app = `
    const metadata = await (await fetch(process.env.OUTRIGGER_URL + '/v1/metadata')).json();
    console.log('APP', metadata.appId, process.env.PORT, process.env.OUTRIGGER_APP_ID);
    process.exit(3);`;
  const cli = runCli(t, ['run', '--config', configFile(t, config), '--', node, '--input-type=module', '-e', app]);
  t.same(await cli.exited, { code: 3, signal: null });
  t.match(cli.stdout(), /^APP reporter 18080 reporter$/m);
  const order = cli.logs.map((line) => line.msg);
  t.ok(order.indexOf('app exited') < order.indexOf('sidecar stopped'), 'the sidecar stops after the app');
});

t.test('SIGTERM stops the app first, then the sidecar; exit 0', async (t) => {
  const app = `
    process.on('SIGTERM', () => { console.log('APP got SIGTERM'); process.exit(0); });
    console.log('APP up');
    setInterval(() => {}, 1000);`;
  const cli = runCli(t, ['run', '--config', configFile(t, config), '--', node, '-e', app]);
  await until('the app to start', () => cli.stdout().includes('APP up'));
  t.same(await cli.stop('SIGTERM'), { code: 0, signal: null });
  const out = cli.stdout();
  t.ok(out.indexOf('APP got SIGTERM') < out.indexOf('"sidecar stopped"'), 'app stopped before the sidecar');
});

t.test('usage mistakes exit 2; a missing program exits 127', async (t) => {
  const noCommand = runCli(t, ['run', '--config', configFile(t, config)]);
  t.same(await noCommand.exited, { code: 2, signal: null });
  t.match(noCommand.stderr(), /run needs a command after "--"/);

  const missing = runCli(t, ['run', '--config', configFile(t, config), '--', '/nonexistent/program']);
  t.same(await missing.exited, { code: 127, signal: null });
  t.match(missing.stderr(), /cannot start the app: ENOENT/);
});
