// The app's request body on its way to the target. Up to REPLAYABLE_LIMIT it
// is held in memory so a retry can send it again; a larger one streams
// through once (the first REPLAYABLE_LIMIT bytes already read, then the rest
// as it arrives) and is never retried.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';

const REPLAYABLE_LIMIT = 64 * 1024;

export type RequestBody = { kind: 'none' } | { kind: 'buffered'; data: Buffer } | { kind: 'stream'; stream: Readable };

export const NO_BODY: RequestBody = { kind: 'none' };

export function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Reads up to REPLAYABLE_LIMIT bytes of the body (of a request that hasBody); the rest (if any) is left to stream. */
export function readRequestBody(request: IncomingMessage): Promise<RequestBody> {
  const declared = Number(request.headers['content-length']);
  if (declared > REPLAYABLE_LIMIT) return Promise.resolve({ kind: 'stream', stream: request });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > REPLAYABLE_LIMIT) {
        request.pause();
        cleanup();
        resolve({ kind: 'stream', stream: Readable.from(rest(chunks, request), { objectMode: false }) });
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
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
  });
}

async function* rest(head: Buffer[], request: IncomingMessage): AsyncIterable<Buffer> {
  yield* head;
  for await (const chunk of request) yield chunk as Buffer;
}
