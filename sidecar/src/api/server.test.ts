// The app API's servers: every address of localhost, a port in use, and a
// close that waits for the requests in flight but not for the keep-alive time.
import { Agent, request } from 'node:http';
import t from 'tap';
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

t.test('localhost is every address it resolves to, on one port', async (t) => {
  const server = new ApiServer((_request, response) => response.end('hello'));
  t.teardown(() => server.close());
  const addresses = await server.listen('localhost', 0);
  const loopback = addresses.find((address) => address.address === '127.0.0.1');
  t.ok(loopback, '127.0.0.1 is bound');
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
