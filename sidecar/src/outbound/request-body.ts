// The app's request body on its way to the target. Up to REPLAYABLE_LIMIT it
// is held in memory so a retry can send it again; a larger one streams
// through once (the first REPLAYABLE_LIMIT bytes already read, then the rest
// as it arrives) and is never retried. Either way the app's request itself is
// never destroyed by the call: cut off (its deadline passed, or the target
// stopped reading), the rest of the body is read and dropped, so the app gets
// its answer (504 UPSTREAM_TIMEOUT, or the target's) on a connection that
// stays usable, as Node.js does for a request its handler did not read.
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import type { Hangup } from './hangup.ts';

const REPLAYABLE_LIMIT = 64 * 1024;

export type RequestBody = { kind: 'none' } | { kind: 'buffered'; data: Buffer } | { kind: 'stream'; stream: Readable };

export const NO_BODY: RequestBody = { kind: 'none' };

/** Why readRequestBody gave up: the call was cut (the app went away, or the deadline passed) while the body arrived. */
class BodyCut extends Error {}

export function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Reads up to REPLAYABLE_LIMIT bytes of the body (of a request that hasBody); the rest (if any) is left to stream.
 * Rejects with BodyCut when the call is cut first, or with the request's error when it breaks off.
 */
export function readRequestBody(request: IncomingMessage, hangup: Hangup): Promise<RequestBody> {
  const declared = Number(request.headers['content-length']);
  if (declared > REPLAYABLE_LIMIT) return Promise.resolve({ kind: 'stream', stream: onward(request, []) });
  if (hangup.cut) {
    request.resume();
    return Promise.reject(new BodyCut());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      hangup.unwatch(onCut);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > REPLAYABLE_LIMIT) {
        request.pause();
        cleanup();
        resolve({ kind: 'stream', stream: onward(request, chunks) });
      }
    };
    const onEnd = () => {
      cleanup();
      resolve(
        chunks.length === 1
          ? { kind: 'buffered', data: chunks[0] as Buffer }
          : { kind: 'buffered', data: Buffer.concat(chunks, size) },
      );
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onCut = () => {
      cleanup();
      request.resume(); // the rest is dropped as it arrives
      reject(new BodyCut());
    };
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    hangup.watch(onCut);
  });
}

/**
 * The body as undici sends it: `head` (already read), then the rest of the request as it arrives. undici destroys
 * the stream it sends when the attempt ends early; that stream is this one, not the app's request, which then has
 * the rest of its body dropped.
 */
function onward(request: IncomingMessage, head: Buffer[]): Readable {
  const body = new PassThrough();
  // Until undici listens, if it ever does (the circuit may refuse the call first): the app's request breaking off
  // must not be an uncaught 'error'.
  body.on('error', noop);
  for (const chunk of head) body.write(chunk);
  const broke = (error: Error) => body.destroy(error);
  request.once('error', broke);
  request.pipe(body);
  body.once('close', () => {
    request.off('error', broke);
    request.unpipe(body);
    if (!request.complete) request.resume();
  });
  return body;
}

function noop(): void {}
