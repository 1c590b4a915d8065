// An app reading an answer from the sidecar the way node:http frames it: to
// its end, or to where its connection broke off, which a client library that
// throws on a broken answer would hide behind its error.
import { get, type IncomingHttpHeaders } from 'node:http';

export interface Download {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The answer arrived to its end, as HTTP frames it (the last chunk, or content-length bytes). */
  complete: boolean;
  /** Why it ended early (ECONNRESET when the connection closed under it), if it did. */
  error: string | undefined;
}

/** Quiet this long, a download fails: an answer left hanging fails its test at once rather than at the suite's timeout. */
const IDLE_MS = 5_000;

/** GETs `url` on a connection of its own and reads the answer; `onData` sees the body so far as it grows. */
export function download(url: string, onData: (received: string) => void = () => {}): Promise<Download> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent: false }, (response) => {
      let body = '';
      response.setEncoding('latin1');
      response.on('data', (chunk: string) => {
        body += chunk;
        onData(body);
      });
      response.on('error', () => {}); // reported by `error` below
      response.on('close', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body,
          complete: response.complete,
          error: (response.errored as NodeJS.ErrnoException | null)?.code,
        }),
      );
    });
    request.on('error', reject);
    request.setTimeout(IDLE_MS, () =>
      request.destroy(Object.assign(new Error(`no bytes for ${IDLE_MS} ms`), { code: 'IDLE' })),
    );
  });
}
