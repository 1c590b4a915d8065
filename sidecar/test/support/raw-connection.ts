// The app's side of one HTTP/1.1 connection to the sidecar, written and read
// raw. Node's and undici's clients open a new connection after an answer that
// came before the request's body was all sent, so only a raw connection shows
// whether the sidecar's side of it stays usable.
import { connect, type Socket } from 'node:net';
import type { Test } from 'tap';
import type { Answer } from './upstream.ts';

/** One connection to `port` on loopback, closed when the test ends. */
export class RawConnection {
  private received = Buffer.alloc(0);
  private readonly socket: Socket;
  private wake: () => void = () => {};

  constructor(t: Test, port: number) {
    this.socket = connect({ host: '127.0.0.1', port });
    this.socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.wake();
    });
    this.socket.on('close', () => this.wake());
    t.teardown(() => void this.socket.destroy());
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The app goes away: the connection is closed at once, whatever is under way on it. */
  close(): void {
    this.socket.destroy();
  }

  /** The next answer on the connection (its body by content-length, or chunked), within 8 s. */
  async answer(): Promise<Answer> {
    const deadline = Date.now() + 8_000;
    for (;;) {
      const parsed = parseAnswer(this.received);
      if (parsed !== undefined) {
        this.received = this.received.subarray(parsed.length);
        return parsed.answer;
      }
      if (this.socket.destroyed || this.socket.readableEnded) throw new Error('the sidecar closed the connection');
      if (Date.now() > deadline) throw new Error('no answer within 8 s');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

/**
 * A request on a new connection to the sidecar at `api` that sends the `first` part of its body and waits for the
 * answer before it sends the `rest`, then a GET to `next` on the same connection: whether the app's connection is
 * still usable. `took` is from the request's start to its answer, `nextTook` from the GET to its answer.
 */
export async function answeredMidBody(
  t: Test,
  api: string,
  request: {
    method: string;
    path: string;
    headers: Record<string, string>;
    first: Buffer | string;
    rest: Buffer | string;
    next: string;
  },
): Promise<{ answer: Answer; took: number; next: Answer; nextTook: number }> {
  const connection = new RawConnection(t, Number(new URL(api).port));
  const head = Object.entries(request.headers).map(([name, value]) => `${name}: ${value}\r\n`);
  const started = Date.now();
  connection.write(`${request.method} ${request.path} HTTP/1.1\r\nhost: sidecar\r\n${head.join('')}\r\n`);
  connection.write(request.first);
  const answer = await connection.answer();
  const took = Date.now() - started;
  connection.write(request.rest);
  connection.write(`GET ${request.next} HTTP/1.1\r\nhost: sidecar\r\n\r\n`);
  const nextStarted = Date.now();
  const next = await connection.answer();
  return { answer, took, next, nextTook: Date.now() - nextStarted };
}

/** One whole HTTP/1.1 answer at the start of `data`, and its length in bytes; undefined until it is all there. */
function parseAnswer(data: Buffer): { answer: Answer; length: number } | undefined {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const [statusLine = '', ...lines] = data.subarray(0, headEnd).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  let at = headEnd + 4;
  const chunks: Buffer[] = [];
  if (headers['transfer-encoding'] === 'chunked') {
    for (;;) {
      const lineEnd = data.indexOf('\r\n', at);
      if (lineEnd < 0) return undefined;
      const size = Number.parseInt(data.subarray(at, lineEnd).toString(), 16);
      if (data.length < lineEnd + 2 + size + 2) return undefined;
      chunks.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
      if (size === 0) break;
    }
  } else {
    const size = Number(headers['content-length'] ?? 0);
    if (data.length < at + size) return undefined;
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  const text = Buffer.concat(chunks).toString();
  const answer = { status: Number(statusLine.split(' ')[1]), headers, text, json: () => JSON.parse(text) };
  return { answer, length: at };
}
