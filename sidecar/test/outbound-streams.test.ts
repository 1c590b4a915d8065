// Outbound calls, answers that stream: one the target breaks off after its
// status went back to the app. A real upstream on loopback, an in-process
// sidecar.
import t, { type Test } from 'tap';
import type { TargetInput } from '../src/config/target.ts';
import { download } from './support/download.ts';
import { startInProcess } from './support/in-process.ts';
import { apiClient, reply, startUpstream } from './support/upstream.ts';

async function sidecarWith(t: Test, targets: TargetInput[]) {
  const { api, ops } = await startInProcess(t, { appId: 'outbound', targets }, { waitForBroker: false });
  return { api, ops, call: apiClient(t, api) };
}

for (const framing of ['chunked', 'content-length'] as const) {
  t.test(
    `a ${framing} answer the target breaks off after its status went back ends the app's connection`,
    async (t) => {
      const FIRST = 'y'.repeat(100 * 1024); // over 64 KiB: the answer streams, its status goes back at once
      let appHasIt: () => void = () => {};
      const appHasFirstPart = new Promise<void>((resolve) => {
        appHasIt = resolve;
      });
      const upstream = await startUpstream(t, (request, response) => {
        request.resume();
        const length = framing === 'chunked' ? {} : { 'content-length': String(1024 * 1024) };
        response.writeHead(200, { 'content-type': 'text/plain', ...length });
        response.write(FIRST);
        void appHasFirstPart.then(() => response.socket?.destroy());
      });
      const { api, call } = await sidecarWith(t, [{ name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}` }]);
      const broken = await download(`${api}/v1/outbound/api/big`, (received) => {
        if (received.length >= FIRST.length) appHasIt();
      });
      t.equal(broken.status, 200, 'the status had gone back');
      t.equal(broken.headers['transfer-encoding'], framing === 'chunked' ? 'chunked' : undefined);
      t.equal(broken.body, FIRST, 'with what the target sent before it broke off');
      t.notOk(broken.complete, 'the app sees the answer end early, not a clean (truncated) answer');
      t.equal(broken.error, 'ECONNRESET', 'its connection was ended');
      t.equal(upstream.hits.length, 1, 'not sent again: its status had gone back');

      upstream.handle(reply(200, {}, 'next'));
      const next = await call('/v1/outbound/api/next');
      t.equal(next.status, 200, 'the sidecar goes on serving');
      t.equal(next.text, 'next');
    },
  );
}
