// The app API's HTTP servers: every request goes to the outbound proxy first
// (api/outbound.ts), and to fastify's router when it is not an outbound call.
// The sidecar listens with these rather than with fastify's listen(): a
// fastify given its server by a factory binds only the first address of
// "localhost", and the app API listens on all of them (127.0.0.1 and ::1).
// The settings are fastify's defaults for the servers it makes.
import { lookup } from 'node:dns/promises';
import { createServer, type RequestListener, type Server } from 'node:http';
import { type AddressInfo, isIP } from 'node:net';

/** No limit on receiving a request (an upload may stream for long); idle keep-alive connections close after 72 s. */
const KEEP_ALIVE_MS = 72_000;
/** While closing, how often connections that have become idle are closed. */
const REAP_MS = 50;

export class ApiServer {
  private readonly servers: Server[] = [];
  private readonly handler: RequestListener;

  constructor(handler: RequestListener) {
    this.handler = handler;
  }

  /**
   * Listens on `host`, and when it is a name (localhost) on every other address
   * it resolves to as well, on the same port: those that cannot be bound (no
   * IPv6 here, say) are left out. Rejects with the listen error of the first.
   */
  async listen(host: string, port: number): Promise<AddressInfo[]> {
    const first = await this.bind(host, port);
    if (isIP(host) === 0) {
      for (const { address } of await lookup(host, { all: true }).catch(() => [])) {
        if (address !== first.address) await this.bind(address, first.port).catch(() => undefined);
      }
    }
    return this.addresses();
  }

  addresses(): AddressInfo[] {
    return this.servers.map((server) => server.address() as AddressInfo);
  }

  /**
   * Stops taking connections; resolves once every request in flight is answered.
   * A kept-alive connection is closed as soon as it is idle (once, node:http
   * would close only those idle at the start, and leave the others open for
   * the keep-alive time).
   */
  async close(): Promise<void> {
    const reaper = setInterval(() => {
      for (const server of this.servers) server.closeIdleConnections();
    }, REAP_MS);
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeIdleConnections();
          }),
      ),
    );
    clearInterval(reaper);
  }

  private bind(host: string, port: number): Promise<AddressInfo> {
    const server = createServer(this.handler);
    server.keepAliveTimeout = KEEP_ALIVE_MS;
    server.requestTimeout = 0;
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
