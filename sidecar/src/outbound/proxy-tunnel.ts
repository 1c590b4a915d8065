// An https:// target behind the egress proxy: an HTTP CONNECT tunnel to the
// target's host:port, then the target's own TLS over it (its connector, from
// target-tls.ts, or undici's default). The CONNECT exchange is ours rather
// than undici's ProxyAgent, so that a refusal keeps its status (the app is
// told `the proxy refused the tunnel (407)`) and the target keeps its own
// pool, policies and TLS files. Bounded: the target's connect timeout, and a
// head of at most 16 KiB.
import { connect, type Socket } from 'node:net';
import { type buildConnector, errors } from 'undici';
import type { EgressProxy } from './egress-proxy.ts';

const MAX_HEAD_BYTES = 16 * 1024;

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

/** A socket through `proxy` to host:port, once the proxy said 2xx to the CONNECT. */
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
    let received = Buffer.alloc(0);
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
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      // Also when its end came in the same read as the rest: the bound is the head's, not the read's.
      if ((end === -1 ? received.length : end + 4) > MAX_HEAD_BYTES) {
        return fail(new TunnelFailed('its answer has no end of head within 16 KiB'));
      }
      if (end === -1) return;
      const status = /^HTTP\/1\.[01] (\d{3})(?:[ \r]|$)/.exec(received.subarray(0, end).toString('latin1'))?.[1];
      if (status === undefined) return fail(new TunnelFailed('its answer is not HTTP/1.x'));
      if (!status.startsWith('2')) return fail(new TunnelFailed(`status ${status}`, Number(status)));
      // The target speaks only after our TLS hello: anything more is not a tunnel.
      if (received.length > end + 4) return fail(new TunnelFailed('it sent data before the TLS handshake'));
      settle();
      resolve(socket);
    };
    socket.on('data', onData).on('error', fail).on('close', onClose);
    socket.write(`${head.join('\r\n')}\r\n\r\n`);
  });
}
