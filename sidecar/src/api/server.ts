// The app API's HTTP servers: every request goes to the outbound proxy first
// (api/outbound.ts), and to fastify's router when it is not an outbound call.
// The sidecar listens with these rather than with fastify's listen(): a
// fastify given its server by a factory binds only the first address of
// "localhost", and the app API listens on all of them (127.0.0.1 and ::1).
// The settings are fastify's defaults for the servers it makes.
import { lookup } from 'node:dns/promises';
import { createServer, type RequestListener, type Server, STATUS_CODES } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { PROBLEM_JSON } from './errors.ts';
import { ProblemError } from './problems.ts';

/** No limit on receiving a request (an upload may stream for long); idle keep-alive connections close after 72 s. */
const KEEP_ALIVE_MS = 72_000;
/** While closing, how often connections that have become idle are closed. */
const REAP_MS = 50;

export class ApiServer {
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly handler: RequestListener;
  private closing = false;

  constructor(handler: RequestListener) {
    // Once closing, every answer says `connection: close`, and node:http ends its connection after it.
    this.handler = (request, response) => {
      if (this.closing) response.setHeader('connection', 'close');
      handler(request, response);
    };
  }

  /**
   * Listens on `host`; "localhost" is every address it resolves to, on the
   * same port (those that cannot be bound, ::1 without IPv6 say, are left
   * out). Rejects with the listen error of the first.
   */
  async listen(host: string, port: number): Promise<AddressInfo[]> {
    const first = await this.bind(host, port);
    if (host === 'localhost') {
      for (const { address } of await lookup(host, { all: true }).catch(() => [])) {
        if (address !== first.address) await this.bind(address, first.port).catch(() => undefined);
      }
    }
    return this.addresses();
  }

  addresses(): AddressInfo[] {
    return this.servers.flatMap((server) => {
      const address = server.address();
      return address === null || typeof address === 'string' ? [] : [address];
    });
  }

  /**
   * Resolves once every request in flight is answered and every connection
   * closed. Until then each answer says `connection: close`, and a kept-alive
   * connection is closed once it is idle (node:http closes only those idle
   * when closing begins, and leaves the others open, and its close()
   * waiting, for the keep-alive time). Never while an answer is still being
   * written: closeIdleConnections() counts a connection whose answer has
   * ended as idle, and would cut off what a slow reader has not taken yet;
   * so the servers stop taking connections only once no answer is being
   * written (new ones meanwhile are refused by the app API: SHUTTING_DOWN).
   */
  async close(): Promise<void> {
    this.closing = true;
    const closed = this.servers.map((server) => new Promise<void>((resolve) => server.once('close', () => resolve())));
    let stopped = false;
    const reap = () => {
      for (const socket of this.sockets) if (socket.writableLength > 0) return;
      for (const server of this.servers) {
        if (stopped) server.closeIdleConnections();
        else server.close();
      }
      stopped = true;
    };
    reap();
    const reaper = setInterval(reap, REAP_MS).unref();
    await Promise.all(closed);
    clearInterval(reaper);
  }

  private bind(host: string, port: number): Promise<AddressInfo> {
    const server = createServer(this.handler);
    server.keepAliveTimeout = KEEP_ALIVE_MS;
    server.requestTimeout = 0;
    server.on('clientError', answerClientError);
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        this.servers.push(server);
        resolve(server.address() as AddressInfo);
      });
    });
  }
}

/**
 * A request node:http could not parse, or whose headers were too large or
 * too slow, gets problem details (not Node's bare status line) and its
 * connection closed: the same answer as every other error of the app API.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  // While an answer is still to be written on this connection (to this request, whose body
  // broke off, or to one before it that this pipelined request followed), an answer written
  // here would take its place: the connection just closes.
  const pending = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || pending != null) {
    socket.destroy();
    return;
  }
  const problem = problemOf(error);
  const body = JSON.stringify(problem.toBody());
  // Destroyed once written, not just ended: node:http's sockets are half-open, and a client that
  // never closes its side (one that sent half its headers and went quiet) would keep it for good.
  socket.end(
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\n` +
      `content-type: ${PROBLEM_JSON}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

function problemOf(error: NodeJS.ErrnoException): ProblemError {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new ProblemError(
        'HEADERS_TOO_LARGE',
        'the request line and headers are larger than the sidecar accepts (16 KiB)',
      );
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ProblemError('REQUEST_TIMEOUT', "the request's headers did not arrive in time");
    default:
      return new ProblemError('REQUEST_INVALID', `the request is not valid HTTP/1.1 (${error.code ?? 'parse error'})`);
  }
}
