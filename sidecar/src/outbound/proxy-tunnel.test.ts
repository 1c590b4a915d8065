// The CONNECT exchange against scripted proxies: what is sent, and each way it can fail.
import { createServer, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import type { EgressProxy } from './egress-proxy.ts';
import { openTunnel, TunnelFailed } from './proxy-tunnel.ts';

/** A proxy that hands each connection to `script` with what it received so far. */
async function scripted(t: Test, script: (socket: Socket, received: string) => void): Promise<EgressProxy> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      script(socket, received);
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  const { port } = server.address() as { port: number };
  return { host: '127.0.0.1', port, address: `127.0.0.1:${port}`, authorization: 'Basic dTpw' };
}

t.test('a 2xx opens the tunnel; the request names the target and carries the credentials', async (t) => {
  let head = '';
  const proxy = await scripted(t, (socket, received) => {
    if (!received.endsWith('\r\n\r\n')) return;
    head = received;
    socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
  });
  const socket = await openTunnel(proxy, 'api.example', 8443, 2_000);
  socket.destroy();
  t.equal(
    head,
    'CONNECT api.example:8443 HTTP/1.1\r\nhost: api.example:8443\r\nproxy-authorization: Basic dTpw\r\n\r\n',
  );
});

t.test('another status is ERR_PROXY_TUNNEL_REFUSED with the status', async (t) => {
  let head = '';
  const proxy = await scripted(t, (socket, received) => {
    head = received;
    socket.end('HTTP/1.0 407 Proxy Authentication Required\r\n\r\n');
  });
  const error = await openTunnel(proxy, '::1', 443, 2_000).catch((error: unknown) => error);
  t.ok(error instanceof TunnelFailed);
  t.match(error, { code: 'ERR_PROXY_TUNNEL_REFUSED', status: 407 });
  t.match(head, /^CONNECT \[::1\]:443 HTTP\/1\.1\r\nhost: \[::1\]:443\r\n/, 'an IPv6 target in brackets');
});

t.test('an answer that is not a tunnel is ERR_PROXY_TUNNEL_INVALID', async (t) => {
  const garbage = await scripted(t, (socket) => socket.end('SSH-2.0-OpenSSH\r\n\r\n'));
  t.match(await openTunnel(garbage, 'a', 443, 2_000).catch((e: unknown) => e), { code: 'ERR_PROXY_TUNNEL_INVALID' });

  const endless = await scripted(t, (socket) => socket.write(`HTTP/1.1 200 OK\r\nx: ${'a'.repeat(20_000)}`));
  t.match(
    await openTunnel(endless, 'a', 443, 2_000).catch((e: unknown) => e),
    { code: 'ERR_PROXY_TUNNEL_INVALID', message: /16 KiB/ },
    'a head over 16 KiB',
  );

  const big = await scripted(t, (socket) => socket.write(`HTTP/1.1 200 OK\r\nx: ${'a'.repeat(20_000)}\r\n\r\n`));
  t.match(
    await openTunnel(big, 'a', 443, 2_000).catch((e: unknown) => e),
    { code: 'ERR_PROXY_TUNNEL_INVALID', message: /16 KiB/ },
    'a head over 16 KiB, its end in the same read',
  );

  const fourDigits = await scripted(t, (socket) => socket.write('HTTP/1.1 2000 OK\r\n\r\n'));
  t.match(
    await openTunnel(fourDigits, 'a', 443, 2_000).catch((e: unknown) => e),
    { code: 'ERR_PROXY_TUNNEL_INVALID' },
    'a status of three digits only',
  );

  const eager = await scripted(t, (socket) => socket.write('HTTP/1.1 200 OK\r\n\r\nhello'));
  t.match(await openTunnel(eager, 'a', 443, 2_000).catch((e: unknown) => e), { code: 'ERR_PROXY_TUNNEL_INVALID' });
});

t.test('a proxy that does not answer in time, or hangs up', async (t) => {
  const silent = await scripted(t, () => {});
  const started = Date.now();
  t.match(await openTunnel(silent, 'a', 443, 200).catch((e: unknown) => e), { code: 'UND_ERR_CONNECT_TIMEOUT' });
  t.ok(Date.now() - started < 1_000);

  const closing = await scripted(t, (socket) => socket.destroy());
  t.match(await openTunnel(closing, 'a', 443, 2_000).catch((e: unknown) => e), { code: 'ECONNRESET' });
});
