// The app API's servers: every address of localhost, a port in use, and a
// close that waits for the requests in flight but not for the keep-alive time.

import { lookup } from 'node:dns/promises';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import t, { type Test } from 'tap';
import { ApiServer } from './server.ts';

const get = (port: number, host = '127.0.0.1', agent?: Agent) =>
  new Promise<{ status: number; body: string; connection: string | undefined }>((resolve, reject) => {
    request({ host, port, path: '/', agent }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body, connection: response.headers.connection }),
      );
    })
      .on('error', reject)
      .end();
  });

/**
 * Writes `text` on a new connection that never closes its own side, so the
 * server has to close it; resolves with all it got once the server has.
 */
const rawExchange = (t: Test, port: number, text: string) =>
  new Promise<string>((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    t.teardown(() => socket.destroy());
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('error', reject);
    socket.on('end', () => resolve(answer));
    socket.write(text);
  });

t.test('localhost is every address it resolves to, on one port', async (t) => {
  const server = new ApiServer((_request, response) => response.end('hello'));
  t.teardown(() => server.close());
  const addresses = await server.listen('localhost', 0);
  const loopback = addresses.find((address) => address.address === '127.0.0.1');
  t.ok(loopback, '127.0.0.1 is bound');
  const resolved = (await lookup('localhost', { all: true })).map(({ address }) => address);
  t.same(
    addresses.map(({ address }) => address).sort(),
    resolved.filter((address) => address !== '::1' || addresses.some((bound) => bound.address === '::1')).sort(),
    'every address localhost resolves to (::1 only where IPv6 can be bound)',
  );
  t.equal(new Set(addresses.map((address) => address.port)).size, 1, 'the same port on each');
  for (const { address, port } of addresses) {
    t.same(await get(port, address), { status: 200, body: 'hello', connection: 'keep-alive' }, address);
  }
});

t.test('a port in use is an EADDRINUSE error', async (t) => {
  const first = new ApiServer((_request, response) => response.end());
  t.teardown(() => first.close());
  const [bound] = await first.listen('127.0.0.1', 0);
  const second = new ApiServer((_request, response) => response.end());
  await t.rejects(second.listen('127.0.0.1', bound?.port as number), { code: 'EADDRINUSE' });
});

t.test('close answers the requests in flight, then ends their kept-alive connections', async (t) => {
  const server = new ApiServer((_request, response) => {
    setTimeout(() => response.end('late'), 300);
  });
  const [bound] = await server.listen('127.0.0.1', 0);
  const port = bound?.port as number;
  const agent = new Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  const answer = get(port, '127.0.0.1', agent);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const started = Date.now();
  await server.close();
  const took = Date.now() - started;
  t.same(await answer, { status: 200, body: 'late', connection: 'keep-alive' }, 'the call in flight was answered');
  // node:http alone would keep the connection, and close() waiting, for the 72 s keep-alive time.
  t.ok(took >= 150 && took < 5_000, `closed once the answer was out (${took} ms)`);
  await t.rejects(get(port), { code: 'ECONNREFUSED' }, 'no new connections');
});

t.test('closing, a slow reader still gets all of an answer that has ended', async (t) => {
  const size = 32 * 1024 * 1024;
  const server = new ApiServer((_request, response) => {
    response.writeHead(200, { 'content-length': size }).end(Buffer.alloc(size, 1));
  });
  const [bound] = await server.listen('127.0.0.1', 0);
  const agent = new Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  const received = new Promise<number>((resolve, reject) => {
    request({ host: '127.0.0.1', port: bound?.port, agent }, (response) => {
      let length = 0;
      response.pause();
      // Reads nothing for a while: the answer has ended on the server's side, its bytes wait in buffers.
      setTimeout(() => {
        response.on('data', (chunk: Buffer) => {
          length += chunk.length;
        });
        response.on('end', () => resolve(length));
        response.on('error', reject);
        response.resume();
      }, 400);
    })
      .on('error', reject)
      .end();
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const closed = server.close();
  t.equal(await received, size, 'every byte arrived');
  await closed;
});

t.test('closing, a request that comes on a kept-alive connection is answered with connection: close', async (t) => {
  const server = new ApiServer((request, response) => {
    setTimeout(() => response.end(request.url), request.url === '/first' ? 300 : 0);
  });
  const [bound] = await server.listen('127.0.0.1', 0);
  const socket = connect(bound?.port as number, '127.0.0.1');
  t.teardown(() => socket.destroy());
  let raw = '';
  socket.on('data', (chunk: Buffer) => {
    raw += chunk.toString();
  });
  const ended = new Promise((resolve) => socket.once('close', resolve));
  socket.write('GET /first HTTP/1.1\r\nhost: x\r\n\r\n');
  await new Promise((resolve) => setTimeout(resolve, 100));
  const closed = server.close();
  // Sent on the same connection (pipelined) while the first is still in flight and closing has begun.
  socket.write('GET /second HTTP/1.1\r\nhost: x\r\n\r\n');
  await closed;
  await ended;
  const [first, second] = raw.split('HTTP/1.1 200 OK').slice(1);
  t.match(first, /keep-alive[\s\S]*\/first$/i, 'the request in flight when closing began: kept alive');
  t.match(second, /connection: close[\s\S]*\/second$/i, 'the next one: closed after its answer');
});

t.test(
  'a request that is not valid HTTP, or whose headers are too large, gets problem details and a closed connection',
  async (t) => {
    const server = new ApiServer((_request, response) => response.end('hello'));
    t.teardown(() => server.close());
    const [bound] = await server.listen('127.0.0.1', 0);
    const port = bound?.port ?? 0;
    const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    const invalid = await rawExchange(t, port, 'GET / HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n');
    t.match(invalid, /^HTTP\/1\.1 400 Bad Request\r\n/);
    t.match(invalid, /content-type: application\/problem\+json/);
    t.match(invalid, /connection: close/);
    t.match(bodyOf(invalid), { status: 400, code: 'REQUEST_INVALID' });
    const large = await rawExchange(t, port, `GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    t.match(large, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    t.match(bodyOf(large), { status: 431, code: 'HEADERS_TOO_LARGE' });
    t.same(await get(port), { status: 200, body: 'hello', connection: 'keep-alive' }, 'the server goes on answering');
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise((resolve) => {
      timer = setTimeout(() => resolve('stuck'), 2000);
    });
    t.equal(await Promise.race([server.close().then(() => 'closed'), stuck]), 'closed', 'no connection is left open');
    clearTimeout(timer);
  },
);

t.test('a bad request pipelined behind one still being answered closes the connection, after nothing', async (t) => {
  const server = new ApiServer((request, response) => {
    if (request.url === '/slow') setTimeout(() => response.end('slow'), 200);
    else response.end('hello');
  });
  t.teardown(() => server.close());
  const [bound] = await server.listen('127.0.0.1', 0);
  const answer = await rawExchange(
    t,
    bound?.port ?? 0,
    'GET /slow HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\nno colon here\r\n\r\n',
  );
  t.notMatch(answer, /400/, 'no answer to the bad request takes the place of the first one');
  t.notMatch(answer, /problem\+json/);
  t.equal(answer, '', 'nothing at all: the connection just closes, as Node.js closes it');
});
