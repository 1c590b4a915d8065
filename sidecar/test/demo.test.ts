// `make demo` runs its services with their sidecars and stops cleanly.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import t from 'tap';

const root = new URL('../..', import.meta.url).pathname;

t.test('the demo starts every service with its sidecar, and the weather API, and stops cleanly', async (t) => {
  // 9 s: the second calibration, the one that rolls back, comes some 6 s after the start (1 s to start the
  // sidecars, 1 s before the first calibration, 3 s between two).
  const demo = spawn(process.execPath, ['scripts/demo.ts', '--for', '9s'], {
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
  for (const service of ['ingestion', 'sensor-sim', 'calibration']) {
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

  // The outbound proxy: ingestion asks the weather API (a plain process, no sidecar) through its sidecar, which
  // retries the API's every-4th 503, so the app sees a 200 after 2 attempts, not the failure.
  t.match(out, /^weather-api +\| listening on 127\.0\.0\.1:8090/m, 'the weather API ran');
  t.match(out, /^weather-api +\| GET \/v1\/conditions\/sensor-1 -> 200$/m, 'the weather API answered a call');
  t.match(out, /^weather-api +\| GET \/v1\/conditions\/sensor-1 -> 503 \(every 4th\)$/m, 'and failed one');
  const calls = [...out.matchAll(/^ingestion +\| weather at sensor-1: ambient \d+\.\d C \((\d+) attempts?\)$/gm)];
  t.ok(calls.length > 0, 'ingestion got the weather through its sidecar');
  t.ok(
    calls.some(([, attempts]) => attempts === '2'),
    "a call took 2 attempts: the sidecar's retry hid the 503 from the app",
  );
  // Not asserted: that no call failed. A stall of the loaded machine over the 500 ms attempt timeout is a 504.
  t.match(out, /^weather-api +\| stopped$/m, 'the weather API stopped');

  // The outbox: the shell service commits its row and an outbox row in one transaction; its sidecar relays
  // the outbox row, and ingestion's pushes it. Ids are the calibrations table's own, unique across runs.
  t.match(out, /^calibration sidecar +\| outbox relay connected/m, "calibration's sidecar relays its outbox");
  const committed =
    /^calibration +\| calibrated sensor-1 by -?\d\.\d C \((calibration-\d+)\), committed with its outbox row/m.exec(
      out,
    )?.[1];
  t.ok(committed, 'the shell service committed a calibration with its outbox row');
  t.match(out, new RegExp(`^ingestion +\\| applied ${committed} to sensor-1 `, 'm'), `ingestion got ${committed}`);
  const rolledBack = [...out.matchAll(/^calibration +\| calibrated sensor-1 .*\((calibration-\d+)\), then ROLLBACK/gm)];
  t.ok(rolledBack.length > 0, 'the second calibration rolled back within the run');
  for (const [, id] of rolledBack)
    t.notMatch(out, new RegExp(`^ingestion +\\| applied ${id} `, 'm'), `rolled-back ${id} never published`);
  t.match(out, /demo: stopped cleanly/);
});
