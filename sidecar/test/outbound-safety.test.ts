// Outbound calls, what the sidecar guards: only configured targets, paths
// that cannot leave the base, headers (hop-by-hop, the sidecar's own, secret
// ones), redirects, auth, streaming without buffering, and the metrics.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import t from 'tap';
import { request } from 'undici';
import { configFile, runCli, startSidecar } from './support/sidecar-process.ts';
import { bodyOf, reply, sidecarWith, startUpstream } from './support/upstream.ts';
import { until } from './support/wait.ts';

const TOKEN = 'a-long-enough-api-token';

/** Sends bytes as they are (for request targets no client library would send). */
function rawRequest(api: string, head: string): Promise<string> {
  const { hostname, port } = new URL(api);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(head));
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

t.test('only configured targets are called', async (t) => {
  const upstream = await startUpstream(t);
  const { call } = await sidecarWith(t, [{ name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}` }]);
  const answer = await call('/v1/outbound/other/x');
  t.equal(answer.status, 404);
  t.match(answer.json(), { code: 'TARGET_UNKNOWN' });
  t.equal(upstream.hits.length, 0);
});

t.test('the path and query go under the base path; escapes are refused and nothing is sent', async (t) => {
  const upstream = await startUpstream(t);
  const { api, call } = await sidecarWith(t, [{ name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}/v1/` }]);
  const ok = await call('/v1/outbound/api/items/a%2Fb?q=1&next=http://x&token=%2e%2e');
  t.equal(ok.status, 200);
  t.equal(upstream.hits[0]?.url, '/v1/items/a%2Fb?q=1&next=http://x&token=%2e%2e', 'query untouched');
  t.equal((await call('/v1/outbound/api')).status, 200);
  t.equal(upstream.hits[1]?.url, '/v1', 'the base itself');
  upstream.hits.length = 0;

  for (const path of [
    '/v1/outbound/api/../admin',
    '/v1/outbound/api/a/../../admin',
    '/v1/outbound/api/%2e%2e/admin',
    '/v1/outbound/api/%2E%2e/admin',
    '/v1/outbound/api/.%2E/admin',
    '/v1/outbound/api/./admin',
    '/v1/outbound/api/a/..%2F..%2Fadmin',
    '/v1/outbound/api//evil.example/x',
    '/v1/outbound/api/http://evil.example/x',
    '/v1/outbound/api/http:%2F%2Fevil.example%2Fx',
    '/v1/outbound/api/a%5c..%5cadmin',
    '/v1/outbound/api/a%00b',
    '/v1/outbound/api/a%0d%0aHost:%20evil',
  ]) {
    const answer = await call(path);
    t.equal(answer.status, 400, path);
    t.match(answer.json(), { code: 'PATH_INVALID' }, path);
  }
  // Bytes no client library sends: a backslash, a control character, an absolute-form target.
  t.match(
    await rawRequest(api, 'GET /v1/outbound/api/a\\..\\admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
    /^HTTP\/1\.1 400/,
  );
  t.match(
    await rawRequest(api, 'GET /v1/outbound/api/a\x01b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
    /^HTTP\/1\.1 400/,
  );
  t.match(
    await rawRequest(api, `GET http://evil.example/v1/outbound/api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    /^HTTP\/1\.1 404/,
  );
  t.equal(upstream.hits.length, 0, 'nothing reached the upstream');

  const literal = await call('/v1/outbound/api/%252e%252e/admin');
  t.equal(literal.status, 200, 'double-encoded dots are a literal name');
  t.equal(upstream.hits[0]?.url, '/v1/%252e%252e/admin');
});

t.test('hop-by-hop headers stop at the sidecar both ways; host is the target', async (t) => {
  const upstream = await startUpstream(t, (incoming, response) => {
    incoming.resume();
    response.writeHead(200, {
      connection: 'keep-alive, x-upstream-hop',
      'x-upstream-hop': '1',
      'keep-alive': 'timeout=5',
      'proxy-authenticate': 'Basic',
      'x-end-to-end': 'yes',
    });
    response.end('ok');
  });
  const { api } = await sidecarWith(t, [{ name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}` }]);
  const { hostname, port } = new URL(api);
  const answer = await new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
    const outgoing = httpRequest(
      {
        host: hostname,
        port,
        path: '/v1/outbound/api/x',
        headers: {
          connection: 'keep-alive, x-app-hop',
          'x-app-hop': 'secret-of-the-hop',
          'keep-alive': 'timeout=5',
          te: 'trailers',
          'proxy-authorization': 'Basic abc',
          'outrigger-api-token': 'never-forwarded',
          'x-end-to-end': 'kept',
        },
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers }));
      },
    );
    outgoing.on('error', reject).end();
  });
  t.equal(answer.status, 200);
  const sent = upstream.hits[0]?.headers ?? {};
  t.equal(sent.host, `127.0.0.1:${upstream.port}`);
  t.equal(sent['x-end-to-end'], 'kept');
  for (const name of ['x-app-hop', 'keep-alive', 'te', 'proxy-authorization', 'outrigger-api-token']) {
    t.notOk(name in sent, `${name} not forwarded`);
  }
  t.equal(answer.headers['x-end-to-end'], 'yes');
  for (const name of ['x-upstream-hop', 'proxy-authenticate']) {
    t.notOk(name in answer.headers, `${name} not returned`);
  }
  t.not(answer.headers['keep-alive'], 'timeout=5', "keep-alive, if any, is the sidecar's own connection's");
  t.equal(answer.headers['outrigger-attempts'], '1');
});

t.test('secret headers are added over the app, never echoed, and a rotated file is picked up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'outrigger-secret-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'api-key');
  writeFileSync(file, 'key-one\n');
  process.env.OUTRIGGER_TEST_PAYMENTS_TOKEN = 'Bearer env-secret';
  t.teardown(() => {
    delete process.env.OUTRIGGER_TEST_PAYMENTS_TOKEN;
  });
  const upstream = await startUpstream(t);
  const { call } = await sidecarWith(t, [
    {
      name: 'payments',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      headers: {
        Authorization: { secretEnv: 'OUTRIGGER_TEST_PAYMENTS_TOKEN' },
        'x-api-key': { secretFile: file },
        'x-client': { value: 'outrigger' },
      },
    },
    {
      name: 'down',
      baseUrl: 'http://127.0.0.1:1',
      retry: { maxAttempts: 1 },
      headers: { authorization: { secretEnv: 'OUTRIGGER_TEST_PAYMENTS_TOKEN' } },
    },
  ]);
  await call('/v1/outbound/payments/charge', { headers: { authorization: 'Bearer from-the-app' } });
  t.match(upstream.hits[0]?.headers, {
    authorization: 'Bearer env-secret',
    'x-api-key': 'key-one',
    'x-client': 'outrigger',
  });

  const failed = await call('/v1/outbound/down/x', { headers: { authorization: 'whatever' } });
  t.equal(failed.status, 502);
  t.notMatch(failed.text, /env-secret/, 'the problem does not carry the secret');
  t.notMatch(JSON.stringify(failed.headers), /env-secret/);

  writeFileSync(file, 'key-two\n');
  await new Promise((resolve) => setTimeout(resolve, 2_100));
  await call('/v1/outbound/payments/charge');
  t.equal(upstream.hits[1]?.headers['x-api-key'], 'key-two', 'the rotated value');
});

t.test('a missing secret is a configuration error at startup, naming the file and the field', async (t) => {
  const config = configFile(t, {
    appId: 'outbound',
    targets: [
      {
        name: 'payments',
        baseUrl: 'http://127.0.0.1:1',
        headers: { authorization: { secretEnv: 'NOT_SET_ANYWHERE' } },
      },
      { name: 'files', baseUrl: 'http://127.0.0.1:1', headers: { 'x-key': { secretFile: '/nonexistent/key' } } },
    ],
  });
  const cli = runCli(t, ['sidecar', '--config', config]);
  const exit = await cli.exited;
  t.equal(exit.code, 2);
  // One line each, starting with the file as every other problem with it does.
  t.equal(
    cli.stderr(),
    `outrigger: ${config}: targets[0].headers.authorization.secretEnv: the environment variable NOT_SET_ANYWHERE is not set\n` +
      `outrigger: ${config}: targets[1].headers.x-key.secretFile: cannot read /nonexistent/key (ENOENT)\n`,
  );
});

t.test('outrigger-api-token guards outbound routes too', async (t) => {
  const upstream = await startUpstream(t);
  const { call } = await sidecarWith(t, [{ name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}` }], {
    auth: { apiToken: TOKEN },
  });
  const refused = await call('/v1/outbound/api/x');
  t.equal(refused.status, 401);
  t.equal(upstream.hits.length, 0);
  const allowed = await call('/v1/outbound/api/x', { headers: { 'outrigger-api-token': TOKEN } });
  t.equal(allowed.status, 200);
  t.notOk('outrigger-api-token' in (upstream.hits[0]?.headers ?? {}), 'the token stays with the sidecar');
});

t.test('every method goes through; redirects pass through unless followRedirects allows them', async (t) => {
  const upstream = await startUpstream(t, (incoming, response) => {
    incoming.resume();
    const url = incoming.url ?? '';
    if (url.startsWith('/base/old')) response.writeHead(301, { location: '/base/new' }).end();
    else if (url.startsWith('/base/away')) response.writeHead(302, { location: 'http://evil.example/base/x' }).end();
    else if (url.startsWith('/base/up')) response.writeHead(307, { location: '/elsewhere' }).end();
    else response.writeHead(200, { 'x-method': incoming.method ?? '' }).end(`at ${url}`);
  });
  const base = `http://127.0.0.1:${upstream.port}/base`;
  const { call } = await sidecarWith(t, [
    { name: 'plain', baseUrl: base },
    { name: 'follows', baseUrl: base, followRedirects: true },
  ]);
  for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    const answer = await call('/v1/outbound/plain/x', { method, body: method === 'POST' ? 'b' : undefined });
    t.equal(answer.headers['x-method'], method, `${method} forwarded`);
  }
  const passed = await call('/v1/outbound/plain/old');
  t.equal(passed.status, 301);
  t.equal(passed.headers.location, '/base/new');
  const followed = await call('/v1/outbound/follows/old');
  t.equal(followed.status, 200);
  t.equal(followed.text, 'at /base/new');
  t.equal((await call('/v1/outbound/follows/away')).status, 302, 'another origin is not followed');
  t.equal((await call('/v1/outbound/follows/up')).status, 307, 'outside the base path is not followed');
});

/** Yields `size` bytes in 64 KiB chunks; after the first MiB, waits for `gate` before the rest. */
async function* bytes(size: number, gate: () => Promise<unknown>) {
  const chunk = Buffer.alloc(64 * 1024, 'y');
  for (let sent = 0; sent < size; sent += chunk.length) {
    if (sent === 1024 * 1024) await gate();
    yield chunk;
  }
}

t.test('20 MB streams up and down: each side sees bytes before the other has sent them all', async (t) => {
  const SIZE = 20 * 1024 * 1024;
  let upstreamGot = 0;
  let appGot = 0;
  const upstream = await startUpstream(t, async (incoming, response) => {
    if (incoming.method === 'PUT') {
      for await (const part of incoming) upstreamGot += (part as Buffer).length;
      response.writeHead(200).end(String(upstreamGot));
      return;
    }
    response.writeHead(200, { 'content-type': 'application/octet-stream' });
    // The rest is written only once the app has the first MiB: a buffering proxy would deadlock here.
    for await (const chunk of bytes(SIZE, () => until('the app to get the first MiB', () => appGot >= 1024 * 1024))) {
      if (!response.write(chunk)) await new Promise((resolve) => response.once('drain', resolve));
    }
    response.end();
  });
  const { api } = await sidecarWith(t, [
    { name: 'bulk', baseUrl: `http://127.0.0.1:${upstream.port}`, timeout: '30s' },
  ]);
  const body = Readable.from(
    bytes(SIZE, () => until('the upstream to get the first MiB', () => upstreamGot >= 1024 * 1024)),
  );
  const up = await request(`${api}/v1/outbound/bulk/upload`, { method: 'PUT', body });
  t.equal(up.statusCode, 200);
  t.equal(await up.body.text(), String(SIZE), 'the upstream got every byte');

  const down = await request(`${api}/v1/outbound/bulk/download`);
  for await (const part of down.body) appGot += (part as Buffer).length;
  t.equal(appGot, SIZE, 'the app got every byte');
});

t.test('a sidecar process moving 100 MB each way grows by less than one body', async (t) => {
  const SIZE = 100 * 1024 * 1024;
  const upstream = await startUpstream(t, async (incoming, response) => {
    if (incoming.method === 'PUT') {
      let received = 0;
      for await (const part of incoming) received += (part as Buffer).length;
      response.writeHead(200).end(String(received));
      return;
    }
    response.writeHead(200);
    for await (const chunk of bytes(SIZE, async () => {})) {
      if (!response.write(chunk)) await new Promise((resolve) => response.once('drain', resolve));
    }
    response.end();
  });
  // The young-generation size the `outrigger` launcher runs with.
  const sidecar = await startSidecar(
    t,
    { appId: 'outbound', targets: [{ name: 'bulk', baseUrl: `http://127.0.0.1:${upstream.port}`, timeout: '60s' }] },
    { NODE_OPTIONS: '--max-semi-space-size=2' },
  );
  const pid = sidecar.child.pid as number;
  const rssMb = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  await (await request(`${sidecar.api}/v1/outbound/bulk/warm`, { method: 'PUT', body: 'x' })).body.text();
  const before = rssMb();
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMb());
  }, 20);
  t.teardown(() => clearInterval(sampler));
  const up = await request(`${sidecar.api}/v1/outbound/bulk/upload`, {
    method: 'PUT',
    body: Readable.from(bytes(SIZE, async () => {})),
  });
  t.equal(await up.body.text(), String(SIZE));
  const down = await request(`${sidecar.api}/v1/outbound/bulk/download`);
  let received = 0;
  for await (const part of down.body) received += (part as Buffer).length;
  t.equal(received, SIZE);
  clearInterval(sampler);
  const grew = peak - before;
  t.ok(grew < 100, `RSS grew ${grew.toFixed(0)} MB moving 2 x 100 MB (garbage not yet collected, not bodies held)`);
});

t.test('the outbound series are on /metrics with bounded labels', async (t) => {
  const upstream = await startUpstream(t, reply(200));
  const { call, ops } = await sidecarWith(t, [
    { name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}` },
    { name: 'down', baseUrl: 'http://127.0.0.1:1', retry: { maxAttempts: 1 } },
  ]);
  await call('/v1/outbound/api/orders/123?x=1');
  await call('/v1/outbound/api/orders/456', { method: 'PATCH', body: '{}' });
  await call('/v1/outbound/down/x');
  const metrics = await (await fetch(`${ops}/metrics`)).text();
  t.match(metrics, /outrigger_outbound_requests_total\{target="api",method="GET",status="200"\} 1/);
  t.match(metrics, /outrigger_outbound_requests_total\{target="api",method="PATCH",status="200"\} 1/);
  t.match(metrics, /outrigger_outbound_requests_total\{target="down",method="GET",status="UPSTREAM_UNREACHABLE"\} 1/);
  t.match(metrics, /outrigger_outbound_request_duration_seconds_count\{target="api",method="GET"\} 1/);
  t.match(metrics, /outrigger_outbound_attempts_total\{target="api",outcome="2xx"\} 2/);
  t.match(metrics, /outrigger_outbound_attempts_total\{target="down",outcome="connect_error"\} 1/);
  t.match(metrics, /outrigger_outbound_circuit_state\{target="api"\} 0/);
  t.match(metrics, /outrigger_outbound_in_flight\{target="api"\} 0/);
  t.match(metrics, /# TYPE outrigger_outbound_rejected_total counter/);
  t.match(metrics, /# TYPE outrigger_outbound_retries_budget_exhausted_total counter/);
  t.notMatch(metrics, /orders/, 'no paths in labels');
});

t.test('a request body reaches the upstream intact', async (t) => {
  let got = '';
  const upstream = await startUpstream(t, async (incoming, response) => {
    got = (await bodyOf(incoming)).toString();
    response.writeHead(201).end();
  });
  const { call } = await sidecarWith(t, [{ name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}` }]);
  const answer = await call('/v1/outbound/api/x', {
    method: 'POST',
    body: '{"amount":42}',
    headers: { 'content-type': 'application/json' },
  });
  t.equal(answer.status, 201);
  t.equal(got, '{"amount":42}');
  t.equal(upstream.hits[0]?.headers['content-type'], 'application/json');
});
