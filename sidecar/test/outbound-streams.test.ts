// Outbound calls, answers that stream: one the target breaks off after its
// status went back to the app, and answers the sidecar discards (a retried
// or a followed one), short ones read to keep their connection, long ones
// dropped with it. A real upstream on loopback, an in-process sidecar.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import t, { type Test } from 'tap';
import { download } from './support/download.ts';
import { reply, sidecarWith, startUpstream, type UpstreamHandler } from './support/upstream.ts';
import { until } from './support/wait.ts';

/** Sends `size` bytes as fast as they are taken, then ends; stops when the connection goes. */
function writeBytes(response: ServerResponse, size: number): void {
  const chunk = Buffer.alloc(16 * 1024, 'x');
  async function* bytes() {
    for (let sent = 0; sent < size; sent += chunk.length) yield chunk.subarray(0, Math.min(chunk.length, size - sent));
  }
  pipeline(Readable.from(bytes()), response).catch(() => {});
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

/** Remembers each request's connection, and whether each answer was written to its end. */
function connections() {
  const sockets: Socket[] = [];
  const finished: boolean[] = [];
  return {
    sockets,
    finished,
    /** Wraps a handler: notes the request's connection, and how its answer ended. */
    noting(handler: UpstreamHandler): UpstreamHandler {
      return (request, response, hit) => {
        const index = sockets.push(request.socket) - 1;
        response.once('close', () => {
          finished[index] = response.writableFinished;
        });
        handler(request, response, hit);
      };
    },
  };
}

/** Sends `size` bytes with `status` (and `headers`), chunked; the next request gets 200 "after". */
/** First a `size`-byte answer (with its content-length when `whole`, so the sidecar reads it in one piece), then 'after'. */
function firstThen(status: number, headers: Record<string, string>, size: number, whole = false): UpstreamHandler {
  let count = 0;
  return (request, response) => {
    request.resume();
    if (count++ > 0) {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('after');
      return;
    }
    const length = whole ? { 'content-length': String(size) } : {};
    response.writeHead(status, { 'content-type': 'text/plain', ...headers, ...length });
    writeBytes(response, size);
  };
}

const DISCARDS = [
  {
    how: 'retried',
    status: 503,
    headers: {},
    target: { retry: { initial: '5ms', jitter: 0 } },
  },
  {
    how: 'redirected',
    status: 302,
    headers: { location: '/base/moved' },
    target: { followRedirects: true },
  },
] as const;

for (const { how, status, headers, target } of DISCARDS) {
  /** A call whose first answer (`size` bytes) is discarded and whose second is 'after'; the upstream's connections. */
  const afterDiscarding = async (t: Test, size: number, whole = false) => {
    const seen = connections();
    const upstream = await startUpstream(t, seen.noting(firstThen(status, headers, size, whole)));
    const { call } = await sidecarWith(t, [
      { name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}/base`, ...target },
    ]);
    const answer = await call('/v1/outbound/api/x');
    t.equal(answer.status, 200);
    t.equal(answer.text, 'after');
    t.equal(upstream.hits.length, 2);
    return seen;
  };

  t.test(
    `a discarded (${how}) answer read whole (a short one) leaves its connection for the next request`,
    async (t) => {
      const seen = await afterDiscarding(t, 1024, true);
      t.equal(seen.sockets[1], seen.sockets[0], 'the second request went on the same connection');
    },
  );

  t.test(`a discarded (${how}) answer up to 128 KiB is read to its end, and its connection used again`, async (t) => {
    // Over 64 KiB, so it streams and is read chunk by chunk, and under the 128 KiB read to keep a connection.
    const seen = await afterDiscarding(t, 100 * 1024);
    t.equal(seen.sockets[1], seen.sockets[0], 'the second request went on the same connection');
  });

  t.test(`a discarded (${how}) answer over 128 KiB is not read to its end: its connection is dropped`, async (t) => {
    // Far more than the sockets' buffers on both sides hold: had it been read, it would have been sent in full.
    const seen = await afterDiscarding(t, 64 * 1024 * 1024);
    t.not(seen.sockets[1], seen.sockets[0], 'the second request went on a new connection');
    await until('the discarded answer closes', () => seen.finished[0] !== undefined);
    t.equal(seen.finished[0], false, 'the sidecar hung up on it before the end');
    t.ok(seen.sockets[0]?.destroyed, 'its connection is closed');
  });
}
