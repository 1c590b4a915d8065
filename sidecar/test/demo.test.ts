// `make demo` runs its services with their sidecars and stops cleanly.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import t from 'tap';

const root = new URL('../..', import.meta.url).pathname;

t.test('the demo starts every service with its sidecar and stops cleanly', async (t) => {
  const demo = spawn(process.execPath, ['scripts/demo.ts', '--for', '6s'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (demo.exitCode === null) demo.kill('SIGKILL');
  });
  let out = '';
  demo.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  demo.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  const [code] = await once(demo, 'exit');
  t.equal(code, 0, out);
  for (const service of ['ingestion', 'sensor-sim']) {
    t.match(out, new RegExp(`^${service} sidecar +\\| sidecar started`, 'm'), `${service}'s sidecar started`);
    t.match(
      out,
      new RegExp(`^${service} sidecar +\\| broker connected`, 'm'),
      `${service}'s sidecar reached the broker`,
    );
    t.match(out, new RegExp(`^${service} sidecar +\\| sidecar stopped`, 'm'), `${service}'s sidecar stopped`);
  }
  t.match(out, /^ingestion +\| listening on 127\.0\.0\.1:8081/m, 'the TypeScript service ran');
  t.match(out, /^sensor-sim +\| published sensor-1-1 .* -> 202/m, 'the Python service published through its sidecar');
  t.match(out, /^ingestion +\| received sensor-1-\d+ \(attempt \d\)/m, 'the TypeScript service got readings by push');
  t.match(out, /demo: stopped cleanly/);
});
