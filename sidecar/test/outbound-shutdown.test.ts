// Outbound calls while the sidecar stops: a call in flight is answered in
// full, its answer says `connection: close`, and stopping waits for it; in
// the process, SIGTERM waits for an answer still streaming and exits 0.
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { download } from './support/download.ts';
import { startSidecar } from './support/sidecar-process.ts';
import { sidecarWith, startHoldingUpstream, startUpstream } from './support/upstream.ts';
import { until } from './support/wait.ts';

/** Long enough for a stop that did not wait for the call to have finished (it takes a few ms with nothing to wait for). */
const SETTLE_MS = 300;

t.test(
  'stop() with a call in flight: the call is answered with connection: close, and stop waits for it',
  async (t) => {
    const { upstream, held } = await startHoldingUpstream(t);
    const { call, sidecar } = await sidecarWith(t, [{ name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}` }]);
    const pending = call('/v1/outbound/api/slow');
    await until('the call reaches the upstream', () => held.length === 1);

    let stopped = false;
    const stopping = sidecar.stop().then((clean) => {
      stopped = true;
      return clean;
    });
    await sleep(SETTLE_MS);
    t.notOk(stopped, 'stop waits while the call is in flight');

    held.shift()?.end('done');
    const answer = await pending;
    t.equal(answer.status, 200, 'the call completes');
    t.equal(answer.text, 'done');
    t.equal(answer.headers.connection, 'close', 'the app is told not to send more on this connection');
    t.equal(await stopping, true, 'then the sidecar stops, within its grace period');
  },
);

t.test('SIGTERM with an answer streaming: the app gets all of it, then the sidecar exits 0', async (t) => {
  const FIRST = 'a'.repeat(100 * 1024); // over 64 KiB: streamed, its status goes back at once
  const REST = 'b'.repeat(100 * 1024);
  let finish: () => void = () => {};
  const upstream = await startUpstream(t, (request, response) => {
    request.resume();
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.write(FIRST);
    finish = () => response.end(REST);
  });
  const sidecar = await startSidecar(t, {
    appId: 'outbound',
    targets: [{ name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}` }],
  });
  let received = 0;
  const downloading = download(`${sidecar.api}/v1/outbound/api/stream`, (body) => {
    received = body.length;
  });
  await until('the app has the first part', () => received === FIRST.length);

  sidecar.child.kill('SIGTERM');
  await until('the sidecar to log "sidecar stopping"', () =>
    sidecar.logs.some((line) => line.msg === 'sidecar stopping'),
  );
  await sleep(SETTLE_MS);
  t.equal(sidecar.child.exitCode, null, 'the process waits while the answer streams');

  finish();
  const answer = await downloading;
  t.equal(answer.status, 200);
  t.ok(answer.complete, 'the answer arrived to its end');
  t.equal(answer.body, FIRST + REST, 'all of it');
  t.same(await sidecar.exited, { code: 0, signal: null }, 'then the sidecar exits cleanly');
});
