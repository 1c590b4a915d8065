// The CONNECT exchange against scripted proxies: what is sent, how the answer is
// read (interim heads, bare LFs, the tunnel's first bytes), and each way it can fail.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import t, { type Test } from 'tap';
import { buildConnector } from 'undici';
import { issueCertificate } from '../../test/support/certificates.ts';
import { until } from '../../test/support/wait.ts';
import type { EgressProxy } from './egress-proxy.ts';
import { openTunnel, TunnelFailed, tunnelConnector } from './proxy-tunnel.ts';

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

  const switching = await scripted(t, (socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\n\r\n'));
  t.match(
    await openTunnel(switching, 'a', 443, 2_000).catch((e: unknown) => e),
    { code: 'ERR_PROXY_TUNNEL_INVALID', message: /101/ },
    'a 101 is no interim answer: what follows it is another protocol',
  );
});

/** A proxy that answers each CONNECT with these pieces, written 5 ms apart. */
function answering(t: Test, ...pieces: string[]): Promise<EgressProxy> {
  return scripted(t, (socket, received) => {
    if (!received.endsWith('\r\n\r\n')) return;
    void (async () => {
      for (const piece of pieces) {
        socket.write(piece);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
  });
}

t.test('1xx interim answers before the 200 are skipped (RFC 9110 §15.2)', async (t) => {
  const cases: [string, string[]][] = [
    ['100, then 200, apart', ['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 200 Connection established\r\n\r\n']],
    ['100 and 200 in one write', ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\n\r\n']],
    [
      '103 with headers, then 200',
      [
        'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\nLink: </app.js>; rel=preload\r\n\r\n',
        'HTTP/1.1 200 OK\r\nProxy-Agent: test\r\n\r\n',
      ],
    ],
    ['several, then 200', ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n', 'HTTP/1.1 200 OK\r\n\r\n']],
    ['a head split inside its end', ['HTTP/1.1 100 Continue\r\n', '\r\nHTTP/1.1 200 OK\r\n\r', '\n']],
  ];
  for (const [name, pieces] of cases) {
    const socket = await openTunnel(await answering(t, ...pieces), 'a', 443, 2_000);
    t.ok(socket.readable && socket.writable, name);
    socket.destroy();
  }

  const refused = await answering(t, 'HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 403 Forbidden\r\n\r\n');
  t.match(
    await openTunnel(refused, 'a', 443, 2_000).catch((e: unknown) => e),
    { code: 'ERR_PROXY_TUNNEL_REFUSED', status: 403 },
    'the final status decides',
  );
});

t.test('a head whose lines end in a bare LF (RFC 9112 §2.2)', async (t) => {
  for (const pieces of [
    ['HTTP/1.1 200 Connection established\n\n'],
    ['HTTP/1.1 200 OK\nProxy-Agent: test\n\n'],
    ['HTTP/1.0 200\n', '\n'],
    ['HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\r\n\r\n'],
    ['HTTP/1.1 200 OK\r\nProxy-Agent: test\n\r\n'],
  ]) {
    const socket = await openTunnel(await answering(t, ...pieces), 'a', 443, 2_000);
    t.ok(socket.readable, JSON.stringify(pieces.join('')));
    socket.destroy();
  }
  const refused = await answering(t, 'HTTP/1.1 407 Proxy Authentication Required\nProxy-Authenticate: Basic\n\n');
  t.match(await openTunnel(refused, 'a', 443, 2_000).catch((e: unknown) => e), { status: 407 });
});

t.test('the 16 KiB bound covers the interim heads together', async (t) => {
  const interim = 'HTTP/1.1 100 Continue\r\n\r\n';
  const final = 'HTTP/1.1 200 OK\r\n\r\n';
  const flood = await answering(t, interim.repeat(Math.ceil(17_000 / interim.length)), final);
  t.match(
    await openTunnel(flood, 'a', 443, 2_000).catch((e: unknown) => e),
    { code: 'ERR_PROXY_TUNNEL_INVALID', message: /16 KiB/ },
    'in one write',
  );

  const trickle = await answering(t, ...Array.from({ length: 20 }, () => interim.repeat(40)), final);
  t.match(
    await openTunnel(trickle, 'a', 443, 2_000).catch((e: unknown) => e),
    { code: 'ERR_PROXY_TUNNEL_INVALID', message: /16 KiB/ },
    'over several reads',
  );

  const within = await answering(t, interim.repeat(Math.floor((16 * 1024 - final.length) / interim.length)), final);
  const socket = await openTunnel(within, 'a', 443, 2_000);
  t.ok(socket.readable, 'interim heads and the final one within 16 KiB');
  socket.destroy();
});

t.test('what follows the final head is the tunnel’s first bytes', async (t) => {
  const proxy = await scripted(t, (socket, received) => {
    if (received.endsWith('\r\n\r\n')) {
      socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nfirst bytes\r\n\r\n');
    } else if (received.endsWith('ping')) {
      socket.write(' and after');
    }
  });
  const socket = await openTunnel(proxy, 'a', 443, 2_000);
  t.teardown(() => socket.destroy());
  t.ok(socket.isPaused(), 'paused, holding them for its reader');
  let read = '';
  socket.setEncoding('latin1').on('data', (chunk: string) => {
    read += chunk;
  });
  socket.resume();
  await until('the tunnel’s first bytes', () => read === 'first bytes\r\n\r\n');
  socket.write('ping');
  await until('the bytes after the ping', () => read === 'first bytes\r\n\r\n and after');
  t.equal(read, 'first bytes\r\n\r\n and after', 'none lost, none read as a head');
});

t.test('TLS over a tunnel whose answer had an interim head and bare LFs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'outrigger-tunnel-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const certificate = await issueCertificate(dir, 'target', '/CN=api.test.example', [
    'subjectAltName=DNS:api.test.example',
  ]);
  const target = createTlsServer({ cert: certificate.certPem, key: certificate.keyPem }, (socket) =>
    socket.end('over TLS'),
  );
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => target.close(resolve)));
  const targetPort = (target.address() as { port: number }).port;
  // Answers the CONNECT, then relays both ways to the target.
  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    sockets.add(client);
    client.once('data', () => {
      const upstream = connect(targetPort, '127.0.0.1', () => {
        client.write('HTTP/1.1 100 Continue\n\nHTTP/1.1 200 Connection established\nProxy-Agent: test\n\n');
        client.pipe(upstream).pipe(client);
      });
      sockets.add(upstream);
    });
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => relay.close(resolve));
  });
  const proxy = {
    host: '127.0.0.1',
    port: (relay.address() as { port: number }).port,
    address: '',
    authorization: undefined,
  };

  const connector = tunnelConnector(proxy, buildConnector({ ca: certificate.certPem, timeout: 2_000 }), 2_000);
  const socket = await new Promise<Socket>((resolve, reject) =>
    connector(
      { hostname: '127.0.0.1', protocol: 'https:', port: String(targetPort), servername: 'api.test.example' },
      (error, socket) => (error === null ? resolve(socket) : reject(error)),
    ),
  );
  t.teardown(() => socket.destroy());
  let read = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    read += chunk;
  });
  await until('the target’s bytes through the tunnel', () => read === 'over TLS');
  t.equal(read, 'over TLS', 'the handshake and the target’s bytes came through the tunnel');
});

t.test('a proxy that does not answer in time, or hangs up', async (t) => {
  const silent = await scripted(t, () => {});
  const started = Date.now();
  t.match(await openTunnel(silent, 'a', 443, 200).catch((e: unknown) => e), { code: 'UND_ERR_CONNECT_TIMEOUT' });
  t.ok(Date.now() - started < 1_000);

  const closing = await scripted(t, (socket) => socket.destroy());
  t.match(await openTunnel(closing, 'a', 443, 2_000).catch((e: unknown) => e), { code: 'ECONNRESET' });
});
