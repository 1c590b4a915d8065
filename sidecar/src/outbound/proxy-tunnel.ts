// An https:// target behind the egress proxy: an HTTP CONNECT tunnel to the
// target's host:port, then the target's own TLS over it (its connector, from
// target-tls.ts, or undici's default). The CONNECT exchange is ours rather
// than undici's ProxyAgent, so that a refusal keeps its status (the app is
// told `the proxy refused the tunnel (407)`) and the target keeps its own
// pool, policies and TLS files. The answer is read as RFC 9112 lets a
// recipient: 1xx interim heads before the final one are skipped (RFC 9110
// §15.2), and a line may end in a bare LF. Bounded: the target's connect
// timeout, and 16 KiB for the heads together (interim ones included). What
// follows the final head is the tunnel's: the first bytes its reader gets.
import { connect, type Socket } from 'node:net';
import { type buildConnector, errors } from 'undici';
import type { EgressProxy } from './egress-proxy.ts';

const MAX_HEAD_BYTES = 16 * 1024;
/** A head's first line: HTTP/1.x and a status of three digits (the end of the line, CRLF or LF, is in the head). */
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})[ \r\n]/;

/**
 * The proxy answered the CONNECT, but with another status than 2xx
 * (`ERR_PROXY_TUNNEL_REFUSED`, with the status), or not as a tunnel should
 * (`ERR_PROXY_TUNNEL_INVALID`).
 */
export class TunnelFailed extends Error {
  readonly code: 'ERR_PROXY_TUNNEL_REFUSED' | 'ERR_PROXY_TUNNEL_INVALID';
  readonly status: number | undefined;

  constructor(detail: string, status?: number) {
    super(`the proxy did not open the tunnel: ${detail}`);
    this.name = 'TunnelFailed';
    this.code = status === undefined ? 'ERR_PROXY_TUNNEL_INVALID' : 'ERR_PROXY_TUNNEL_REFUSED';
    this.status = status;
  }
}

/** The pool's `connect` option: the tunnel, then `tls` over it. */
export function tunnelConnector(
  proxy: EgressProxy,
  tls: buildConnector.connector,
  timeoutMs: number,
): buildConnector.connector {
  return (options, callback) => {
    const port = Number(options.port || 443);
    openTunnel(proxy, options.hostname, port, timeoutMs).then(
      (socket) => {
        try {
          tls({ ...options, httpSocket: socket }, callback);
        } catch (error) {
          socket.destroy();
          callback(error as Error, null);
        }
      },
      (error: Error) => callback(error, null),
    );
  };
}

/**
 * A socket through `proxy` to host:port, once the proxy said 2xx to the CONNECT:
 * paused, holding what the proxy sent after its head (TLS reads it when it takes
 * the socket over; another reader resumes it).
 */
export function openTunnel(proxy: EgressProxy, hostname: string, port: number, timeoutMs: number): Promise<Socket> {
  const host = hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
  const authority = `${host}:${port}`;
  const head = [
    `CONNECT ${authority} HTTP/1.1`,
    `host: ${authority}`,
    ...(proxy.authorization === undefined ? [] : [`proxy-authorization: ${proxy.authorization}`]),
  ];
  return new Promise((resolve, reject) => {
    const socket = connect({ host: proxy.host, port: proxy.port });
    /** The answer so far, a char per byte (latin1): interim heads, then the final one and perhaps the tunnel's first bytes. */
    let answer = '';
    /** Where the head being read starts (after the interim heads). */
    let start = 0;
    /** How far its end was looked for already, in the reads before. */
    let searched = 0;
    const timer = setTimeout(
      () => fail(new errors.ConnectTimeoutError(`the proxy did not open the tunnel within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const settle = () => {
      clearTimeout(timer);
      socket.off('data', onData).off('error', fail).off('close', onClose);
    };
    function fail(error: Error): void {
      settle();
      socket.destroy();
      reject(error);
    }
    const onClose = () => {
      const closed = new Error('the proxy closed the connection before answering the CONNECT');
      fail(Object.assign(closed, { code: 'ECONNRESET' }));
    };
    const onData = (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      for (;;) {
        // An end split across reads: its first LF may be up to 2 chars back.
        const end = headEnd(answer, Math.max(start, searched - 2));
        if ((end === -1 ? answer.length : end) > MAX_HEAD_BYTES) {
          return fail(new TunnelFailed('its answer has no end of head within 16 KiB'));
        }
        if (end === -1) {
          searched = answer.length;
          return;
        }
        const status = STATUS_LINE.exec(answer.slice(start, end))?.[1];
        if (status === undefined) return fail(new TunnelFailed('its answer is not HTTP/1.x'));
        // 101 is no interim answer: the connection speaks another protocol after it (one not asked for).
        if (status === '101') return fail(new TunnelFailed('it switched protocols (101)'));
        if (status.startsWith('1')) {
          start = end;
          continue;
        }
        if (!status.startsWith('2')) return fail(new TunnelFailed(`status ${status}`, Number(status)));
        settle();
        // Held for the tunnel's reader (TLS reads what the socket holds when it takes the socket over).
        socket.pause();
        if (answer.length > end) socket.unshift(Buffer.from(answer.slice(end), 'latin1'));
        return resolve(socket);
      }
    };
    socket.on('data', onData).on('error', fail).on('close', onClose);
    socket.write(`${head.join('\r\n')}\r\n\r\n`);
  });
}

/** Where the head in `text` ends (after its empty line; lines end in CRLF or a bare LF), from `from` on; -1 before. */
function headEnd(text: string, from: number): number {
  for (let lf = text.indexOf('\n', from); lf !== -1; lf = text.indexOf('\n', lf + 1)) {
    if (text[lf + 1] === '\n') return lf + 2;
    if (text[lf + 1] === '\r' && text[lf + 2] === '\n') return lf + 3;
  }
  return -1;
}
