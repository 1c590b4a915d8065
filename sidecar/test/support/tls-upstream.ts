// A real https:// upstream for outbound tests: a node:https server on
// 127.0.0.1 with a certificate of the test's own, that notes what each request
// showed (its SNI name, headers, client certificate) and answers with a short
// text body naming its path.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Test } from 'tap';

/** A certificate and its key, in PEM. */
export interface KeyPair {
  certPem: string;
  keyPem: string;
}

/** The status and headers of an answer (its body is `over TLS at PATH`). */
export interface TlsAnswer {
  status: number;
  headers?: Record<string, string>;
}

export interface TlsUpstreamOptions {
  /** Require a client certificate that chains to this CA. */
  clientCa?: { certPem: string };
  /** The answer to each path; 200 without. */
  answer?: (url: string) => TlsAnswer;
}

/** What the upstream saw of each request: its path, the SNI name, the host and x-api-key headers. */
export interface TlsSeen {
  url: string | undefined;
  servername: string | false | null;
  host: string | undefined;
  apiKey: string | string[] | undefined;
}

/** How each request's connection was: its client certificate's CN, the issuer of the certificate it was shown. */
export interface Handshake {
  client: string | string[] | undefined;
  issuer: string | string[] | undefined;
  socket: TLSSocket;
}

export interface TlsUpstream {
  port: number;
  seen: TlsSeen[];
  handshakes: Handshake[];
  /** The certificate shown to new connections from now on. */
  show: (certificate: KeyPair) => void;
}

/** 200, `connection: close`: each request on a connection (and a handshake) of its own. */
export const closeEach = (): TlsAnswer => ({ status: 200, headers: { connection: 'close' } });

export async function startTlsUpstream(
  t: Test,
  certificate: KeyPair,
  { clientCa, answer }: TlsUpstreamOptions = {},
): Promise<TlsUpstream> {
  const seen: TlsSeen[] = [];
  const handshakes: Handshake[] = [];
  const requireClient = clientCa !== undefined;
  const contextOf = (pair: KeyPair) => ({
    cert: pair.certPem,
    key: pair.keyPem,
    // The CA that clients' certificates must chain to (a server with `ca` would also send it in its own chain).
    ...(requireClient ? { ca: clientCa.certPem } : {}),
  });
  const upstream: Server = createServer(
    { ...contextOf(certificate), requestCert: requireClient, rejectUnauthorized: requireClient },
    (request, response) => {
      const socket = request.socket as TLSSocket;
      seen.push({
        url: request.url,
        servername: socket.servername,
        host: request.headers.host,
        apiKey: request.headers['x-api-key'],
      });
      handshakes.push({
        client: socket.getPeerCertificate()?.subject?.CN,
        issuer: (socket.getCertificate() as PeerCertificate | null)?.issuer?.CN,
        socket,
      });
      request.resume();
      const { status, headers = {} } = answer?.(request.url ?? '') ?? { status: 200 };
      response.writeHead(status, { 'content-type': 'text/plain', ...headers }).end(`over TLS at ${request.url}`);
    },
  );
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });
  return {
    port: (upstream.address() as AddressInfo).port,
    seen,
    handshakes,
    show: (pair) => upstream.setSecureContext(contextOf(pair)),
  };
}
