// Outbound calls through an egress proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY),
// against a real one (tinyproxy): an https:// target through a CONNECT tunnel
// with its own TLS settings, an http:// target forwarded in absolute form,
// followRedirects through the proxy (both ways), TLS files rotated while the
// calls go through the tunnel, NO_PROXY entries that go direct, the proxy's
// Basic credentials, a proxy that is down, and proxy URLs the sidecar cannot
// use, refused at startup.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { TargetInput } from '../src/config/target.ts';
import { createLogger } from '../src/telemetry/logger.ts';
import { issueCertificate } from './support/certificates.ts';
import { freePort } from './support/ports.ts';
import { callUntil, secretVolume } from './support/secret-volume.ts';
import { runCli } from './support/sidecar-process.ts';
import { startTinyproxy } from './support/tinyproxy.ts';
import { closeEach, startTlsUpstream, type TlsAnswer } from './support/tls-upstream.ts';
import { configProblems, sidecarWith, startUpstream } from './support/upstream.ts';
import { until } from './support/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'outrigger-proxy-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const ca = await issueCertificate(dir, 'ca', '/CN=Outrigger test CA', [
  'basicConstraints=critical,CA:TRUE',
  'keyUsage=critical,keyCertSign',
]);
const serverLeaf = ['basicConstraints=CA:FALSE', 'extendedKeyUsage=serverAuth', 'subjectAltName=DNS:api.test.example'];
const clientLeaf = ['basicConstraints=CA:FALSE', 'extendedKeyUsage=clientAuth'];
/** For the name only: the call must send it (tls.serverName) through the tunnel. */
const named = await issueCertificate(dir, 'named', '/CN=api.test.example', serverLeaf, 'ca');
/** The CA a rotation moves to, and the target's certificate from it. */
const nextCa = await issueCertificate(dir, 'next-ca', '/CN=Outrigger next CA', [
  'basicConstraints=critical,CA:TRUE',
  'keyUsage=critical,keyCertSign',
]);
const namedByNextCa = await issueCertificate(dir, 'named-next', '/CN=api.test.example', serverLeaf, 'next-ca');
const client1 = await issueCertificate(dir, 'client-1', '/CN=client-1', clientLeaf, 'ca');
const client2 = await issueCertificate(dir, 'client-2', '/CN=client-2', clientLeaf, 'ca');

const SECRET = 'secret-value-42';
/** tinyproxy's BasicAuth takes [-a-z0-9._] only: the URL sends it percent-encoded, to be decoded. */
const PASSWORD = 'pass-word.42';
const ENCODED_PASSWORD = 'pass%2Dword%2E42';

/** A sidecar in this process with one attempt per call to each target, these variables as its environment. */
async function sidecarWithEnv(t: Test, env: NodeJS.ProcessEnv, targets: TargetInput[]) {
  const lines: Record<string, unknown>[] = [];
  const { call } = await sidecarWith(
    t,
    targets.map((target) => ({ retry: { maxAttempts: 1 }, ...target })),
    { appId: 'proxy' },
    { env, logger: createLogger('debug', { write: (line: string) => lines.push(JSON.parse(line)) }) },
  );
  const metadataTargets = async () => (await call('/v1/metadata')).json().targets;
  return { call, lines, metadataTargets };
}

const tlsTarget = (port: number): Omit<TargetInput, 'name'> => ({
  baseUrl: `https://127.0.0.1:${port}`,
  tls: { caFile: ca.certPath, serverName: 'api.test.example' },
  headers: { 'x-api-key': { value: SECRET } },
});

t.test('an https:// target through the CONNECT tunnel, with its own TLS settings', async (t) => {
  const proxy = await startTinyproxy(t);
  const upstream = await startTlsUpstream(t, named);
  const { call, metadataTargets } = await sidecarWithEnv(t, { HTTPS_PROXY: proxy.url() }, [
    { name: 'api', ...tlsTarget(upstream.port) },
  ]);

  const answer = await call('/v1/outbound/api/orders');
  t.equal(answer.status, 200);
  t.equal(answer.text, 'over TLS at /orders');
  t.same(upstream.seen, [
    { url: '/orders', servername: 'api.test.example', host: `127.0.0.1:${upstream.port}`, apiKey: SECRET },
  ]);
  await until('the CONNECT in the proxy log', () => proxy.requests().length > 0);
  t.same(proxy.requests(), [`CONNECT 127.0.0.1:${upstream.port} HTTP/1.1`], 'the proxy saw the tunnel only');
  t.same(await metadataTargets(), [
    { name: 'api', baseUrl: `https://127.0.0.1:${upstream.port}`, circuit: 'closed', proxy: `127.0.0.1:${proxy.port}` },
  ]);
});

t.test('an http:// target forwarded in absolute form, host unchanged', async (t) => {
  const proxy = await startTinyproxy(t);
  const upstream = await startUpstream(t);
  const { call, metadataTargets } = await sidecarWithEnv(t, { http_proxy: proxy.url() }, [
    { name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}/v2` },
  ]);

  const answer = await call('/v1/outbound/api/orders?page=2', { headers: { 'proxy-authorization': 'Basic app' } });
  t.equal(answer.status, 200);
  t.equal(upstream.hits.length, 1);
  t.equal(upstream.hits[0]?.url, '/v2/orders?page=2');
  t.equal(upstream.hits[0]?.headers.host, `127.0.0.1:${upstream.port}`, 'the host header is the target’s');
  await until('the request in the proxy log', () => proxy.requests().length > 0);
  t.same(proxy.requests(), [`GET http://127.0.0.1:${upstream.port}/v2/orders?page=2 HTTP/1.1`]);
  t.match(await metadataTargets(), [{ name: 'api', proxy: `127.0.0.1:${proxy.port}` }]);
});

t.test('followRedirects, http:// target: each request of the chain is forwarded, with the credentials', async (t) => {
  const proxy = await startTinyproxy(t, { basicAuth: `user ${PASSWORD}` });
  const upstream = await startUpstream(t, (request, response) => {
    request.resume();
    const url = request.url ?? '';
    if (url === '/v2/old') response.writeHead(301, { location: `http://127.0.0.1:${upstream.port}/v2/moved` }).end();
    else if (url === '/v2/moved') response.writeHead(307, { location: 'new?page=2' }).end();
    else response.writeHead(200, { 'content-type': 'text/plain' }).end(`at ${url}`);
  });
  const { call } = await sidecarWithEnv(t, { HTTP_PROXY: proxy.url(`user:${ENCODED_PASSWORD}`) }, [
    { name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}/v2`, followRedirects: true },
  ]);

  const answer = await call('/v1/outbound/api/old');
  t.equal(answer.status, 200, 'the proxy let each request of the chain through (without its credentials, a 407)');
  t.equal(answer.text, 'at /v2/new?page=2');
  t.same(
    upstream.hits.map(({ url }) => url),
    ['/v2/old', '/v2/moved', '/v2/new?page=2'],
  );
  t.ok(
    upstream.hits.every(({ headers }) => headers.host === `127.0.0.1:${upstream.port}`),
    'the host header is the target’s on each',
  );
  const origin = `http://127.0.0.1:${upstream.port}`;
  await until('the chain in the proxy log', () => proxy.requests().length >= 3);
  t.same(
    proxy.requests(),
    [`GET ${origin}/v2/old HTTP/1.1`, `GET ${origin}/v2/moved HTTP/1.1`, `GET ${origin}/v2/new?page=2 HTTP/1.1`],
    'the redirects were followed through the proxy, in absolute form',
  );
});

t.test('followRedirects, https:// target: the redirects are followed over the tunnel', async (t) => {
  const proxy = await startTinyproxy(t);
  const upstream = await startTlsUpstream(t, named, {
    answer: (url): TlsAnswer =>
      url === '/old'
        ? // Its connection closes: the next request needs a tunnel of its own.
          { status: 302, headers: { location: '/moved', connection: 'close' } }
        : url === '/moved'
          ? { status: 308, headers: { location: `https://127.0.0.1:${upstream.port}/new` } }
          : { status: 200 },
  });
  const { call } = await sidecarWithEnv(t, { HTTPS_PROXY: proxy.url() }, [
    { name: 'api', ...tlsTarget(upstream.port), followRedirects: true },
  ]);

  const answer = await call('/v1/outbound/api/old');
  t.equal(answer.status, 200);
  t.equal(answer.text, 'over TLS at /new');
  t.same(
    upstream.seen,
    ['/old', '/moved', '/new'].map((url) => ({
      url,
      servername: 'api.test.example',
      apiKey: SECRET,
      host: `127.0.0.1:${upstream.port}`,
    })),
    'each request over the target’s own TLS, with its headers',
  );
  const sockets = upstream.handshakes.map(({ socket }) => socket);
  t.not(sockets[0], sockets[1], 'the first connection closed: the redirect needed another');
  const connections = new Set(sockets).size;
  await until('the CONNECTs in the proxy log', () => proxy.requests().length >= connections);
  t.same(
    proxy.requests(),
    Array.from({ length: connections }, () => `CONNECT 127.0.0.1:${upstream.port} HTTP/1.1`),
    'a tunnel for each connection the target saw: the proxy saw no request of the chain',
  );
});

t.test('TLS files rotated in place: new tunnels use the new ones, every call goes through', async (t) => {
  const proxy = await startTinyproxy(t);
  // Each call on a connection of its own, so a tunnel of its own.
  const upstream = await startTlsUpstream(t, named, { clientCa: ca, answer: closeEach });
  // As cert-manager writes a Certificate's Secret: the CA, the client's certificate and key.
  const volume = secretVolume(dir, { 'ca.crt': ca.certPem, 'tls.crt': client1.certPem, 'tls.key': client1.keyPem });
  const { call } = await sidecarWithEnv(t, { HTTPS_PROXY: proxy.url() }, [
    {
      name: 'api',
      baseUrl: `https://127.0.0.1:${upstream.port}`,
      tls: {
        caFile: join(volume.dir, 'ca.crt'),
        certFile: join(volume.dir, 'tls.crt'),
        keyFile: join(volume.dir, 'tls.key'),
        serverName: 'api.test.example',
      },
    },
  ]);
  t.equal((await call('/v1/outbound/api/a')).status, 200);
  t.match(upstream.handshakes, [{ client: 'client-1', issuer: 'Outrigger test CA' }]);

  // A new client certificate, and the CA the target moves to next beside the current one (a CA rotated without downtime).
  volume.update({
    'ca.crt': ca.certPem + nextCa.certPem,
    'tls.crt': client2.certPem,
    'tls.key': client2.keyPem,
  });
  const statuses = await callUntil(
    call,
    'a call made with the new certificate',
    () => upstream.handshakes.at(-1)?.client === 'client-2',
  );
  t.ok(
    statuses.every((status) => status === 200),
    'every call succeeded, with the old files until the new ones were read',
  );

  // The target now shows a certificate of the next CA, which only the rotated caFile trusts.
  upstream.show(namedByNextCa);
  for (const path of ['b', 'c']) t.equal((await call(`/v1/outbound/api/${path}`)).status, 200, `call ${path}`);
  t.match(upstream.handshakes.slice(-2), [
    { client: 'client-2', issuer: 'Outrigger next CA' },
    { client: 'client-2', issuer: 'Outrigger next CA' },
  ]);

  const sockets = upstream.handshakes.map(({ socket }) => socket);
  t.equal(new Set(sockets).size, sockets.length, 'each call made a connection of its own');
  await until('every CONNECT in the proxy log', () => proxy.requests().length >= sockets.length);
  t.same(
    proxy.requests(),
    sockets.map(() => `CONNECT 127.0.0.1:${upstream.port} HTTP/1.1`),
    'each through a tunnel of its own',
  );
});

t.test('NO_PROXY: matching targets go direct, the others through the proxy', async (t) => {
  const proxy = await startTinyproxy(t);
  const [a, b, c] = [await startUpstream(t), await startUpstream(t), await startUpstream(t)];
  const cases: { noProxy: string; direct: TargetInput[]; proxied: TargetInput[] }[] = [
    {
      noProxy: 'LOCALHOST', // a name: the host itself (and its subdomains)
      direct: [{ name: 'name', baseUrl: `http://localhost:${a.port}` }],
      proxied: [{ name: 'address', baseUrl: `http://127.0.0.1:${a.port}` }],
    },
    {
      noProxy: '.localhost', // subdomains only
      direct: [],
      proxied: [{ name: 'name', baseUrl: `http://localhost:${a.port}` }],
    },
    {
      noProxy: 'example.test, 127.0.0.0/8',
      direct: [
        { name: 'a', baseUrl: `http://127.0.0.1:${a.port}` },
        { name: 'b', baseUrl: `http://127.0.0.1:${b.port}` },
      ],
      proxied: [],
    },
    {
      noProxy: `127.0.0.1:${a.port},127.0.0.1:${b.port}`,
      direct: [
        { name: 'a', baseUrl: `http://127.0.0.1:${a.port}` },
        { name: 'b', baseUrl: `http://127.0.0.1:${b.port}` },
      ],
      proxied: [{ name: 'c', baseUrl: `http://127.0.0.1:${c.port}` }],
    },
  ];
  for (const { noProxy, direct, proxied } of cases) {
    const before = proxy.requests().length;
    const { call, metadataTargets } = await sidecarWithEnv(t, { HTTP_PROXY: proxy.url(), NO_PROXY: noProxy }, [
      ...direct,
      ...proxied,
    ]);
    for (const target of direct) {
      t.equal((await call(`/v1/outbound/${target.name}/direct`)).status, 200, `${noProxy}: ${target.baseUrl} direct`);
    }
    for (const target of proxied) {
      t.equal((await call(`/v1/outbound/${target.name}/proxied`)).status, 200, `${noProxy}: ${target.baseUrl} proxied`);
    }
    await until('the proxied calls in the proxy log', () => proxy.requests().length >= before + proxied.length);
    t.same(
      proxy.requests().slice(before),
      proxied.map(({ baseUrl }) => `GET ${baseUrl}/proxied HTTP/1.1`),
      `${noProxy}: only the proxied calls went through the proxy`,
    );
    const shown = (await metadataTargets()) as { name: string; proxy?: string }[];
    t.same(
      shown.filter((target) => target.proxy !== undefined).map((target) => target.name),
      proxied.map(({ name }) => name),
    );
  }
  t.equal(a.hits.length + b.hits.length + c.hits.length, 8, 'every call reached its target');
});

t.test('the proxy’s Basic credentials come from the URL; wrong or none, the proxy’s refusal', async (t) => {
  const proxy = await startTinyproxy(t, { basicAuth: `user ${PASSWORD}` });
  const tls = await startTlsUpstream(t, named);
  const plain = await startUpstream(t);
  const targets: TargetInput[] = [
    {
      name: 'tls',
      ...tlsTarget(tls.port),
      // Retries and a breaker that a single counted failure would open: a 4xx refusal is neither.
      retry: { maxAttempts: 3, initial: '10ms', max: '10ms' },
      circuitBreaker: { consecutiveFailures: 1 },
    },
    { name: 'plain', baseUrl: `http://127.0.0.1:${plain.port}` },
  ];
  const proxied = (credentials?: string) =>
    sidecarWithEnv(t, { HTTPS_PROXY: proxy.url(credentials), HTTP_PROXY: proxy.url(credentials) }, targets);

  const good = await proxied(`user:${ENCODED_PASSWORD}`);
  t.equal((await good.call('/v1/outbound/tls/a')).status, 200, 'https: the tunnel opens with the credentials');
  t.equal((await good.call('/v1/outbound/plain/a')).status, 200, 'http: forwarded with the credentials');
  t.equal(plain.hits[0]?.headers['proxy-authorization'], undefined, 'the proxy took its credentials off');
  t.match(await good.metadataTargets(), [{ proxy: `127.0.0.1:${proxy.port}` }, { proxy: `127.0.0.1:${proxy.port}` }]);

  const wrong = await proxied('user:wrong-password');
  const refused = await wrong.call('/v1/outbound/tls/a');
  t.equal(refused.status, 502);
  // tinyproxy answers 401 to wrong credentials, 407 to none.
  t.match(refused.json(), {
    code: 'UPSTREAM_UNREACHABLE',
    detail: 'target "tls": the proxy refused the tunnel (401) (1 attempt)',
  });
  t.equal(refused.headers['outrigger-attempts'], '1', 'a 4xx refusal is not retried: it would be the same again');
  t.match(await wrong.metadataTargets(), [{ name: 'tls', circuit: 'closed' }], 'nor counted by the breaker');
  const forwarded = await wrong.call('/v1/outbound/plain/a');
  t.equal(forwarded.status, 401, 'http: the proxy’s own answer comes back as it is');
  t.match(forwarded.text, /tinyproxy/i);

  const none = await proxied();
  // The app cannot supply the proxy's credentials: its proxy-* headers stop at the sidecar, valid ones too.
  const fromApp = { 'proxy-authorization': `Basic ${Buffer.from(`user:${PASSWORD}`).toString('base64')}` };
  t.match((await none.call('/v1/outbound/tls/a', { headers: fromApp })).json(), {
    code: 'UPSTREAM_UNREACHABLE',
    detail: 'target "tls": the proxy refused the tunnel (407) (1 attempt)',
  });
  t.equal(
    (await none.call('/v1/outbound/plain/a', { headers: fromApp })).status,
    407,
    "http: the app's own valid proxy-authorization is not forwarded",
  );

  t.equal(tls.seen.length, 1, 'only the call with the credentials reached the https target');
  t.equal(plain.hits.length, 1);
  const everything = JSON.stringify([
    good.lines,
    wrong.lines,
    none.lines,
    refused.text,
    forwarded.text,
    await good.metadataTargets(),
  ]);
  t.notMatch(everything, PASSWORD, 'the password is in no log line and no answer');
  t.notMatch(everything, ENCODED_PASSWORD);
  for (const credentials of [`user:${PASSWORD}`, 'user:wrong-password']) {
    t.notMatch(everything, Buffer.from(credentials).toString('base64'), 'nor the Basic token made of it');
  }
  t.notMatch(everything, 'wrong-password');
  t.notMatch(everything, SECRET, 'nor the secret header');
});

t.test('a proxy that is down: 502 UPSTREAM_UNREACHABLE, as a connect-error', async (t) => {
  const port = await freePort();
  const tls = await startTlsUpstream(t, named);
  const plain = await startUpstream(t);
  const { call } = await sidecarWithEnv(
    t,
    { HTTPS_PROXY: `http://127.0.0.1:${port}`, HTTP_PROXY: `http://127.0.0.1:${port}` },
    [
      { name: 'tls', ...tlsTarget(tls.port), retry: { maxAttempts: 2, initial: '10ms', max: '10ms' } },
      { name: 'plain', baseUrl: `http://127.0.0.1:${plain.port}` },
    ],
  );
  const refused = await call('/v1/outbound/tls/a');
  t.equal(refused.status, 502);
  t.match(refused.json(), {
    code: 'UPSTREAM_UNREACHABLE',
    detail: 'target "tls": could not connect (ECONNREFUSED) (2 attempts)',
  });
  t.equal(refused.headers['outrigger-attempts'], '2', 'retried as a connect-error');
  t.match((await call('/v1/outbound/plain/a')).json(), {
    code: 'UPSTREAM_UNREACHABLE',
    detail: 'target "plain": could not connect (ECONNREFUSED) (1 attempt)',
  });
  t.equal(tls.seen.length + plain.hits.length, 0);
});

t.test('proxy URLs the sidecar cannot use stop it at startup, naming the variable, never the password', async (t) => {
  const problems = (env: NodeJS.ProcessEnv) =>
    configProblems({ appId: 'proxy', targets: [{ name: 'api', baseUrl: 'https://127.0.0.1:1' }] }, env);
  const expected = 'expected http://[user:password@]host[:port]';
  t.same(
    await problems({
      HTTPS_PROXY: 'https://user:s3cret@proxy.example:3128',
      http_proxy: 'socks5://user:s3cret@proxy.example:1080',
    }),
    [
      `HTTPS_PROXY: the scheme https:// is not supported; ${expected}`,
      `http_proxy: the scheme socks5:// is not supported; ${expected}`,
    ],
  );
  t.same(await problems({ https_proxy: 'user:s3cret proxy' }), [`https_proxy: not a URL; ${expected}`]);
  t.same(await problems({ HTTP_PROXY: 'http://user:s3cret@proxy.example:3128/path' }), [
    `HTTP_PROXY: a path, query or fragment is not allowed; ${expected}`,
  ]);
  t.same(await problems({ HTTPS_PROXY: 'http://proxy.example:3128', https_proxy: 'not a url' }), [], 'upper-case wins');
  t.same(
    await problems({ HTTPS_PROXY: 'proxy.example:3128', HTTP_PROXY: 'user:s3cret@10.0.0.1:3128' }),
    [],
    'without a scheme, http:// is meant (as Go and curl read it)',
  );
  t.same(await problems({ HTTPS_PROXY: '', https_proxy: 'http://proxy.example/' }), [], 'an empty one counts as unset');
  t.same(
    await problems({ HTTPS_PROXY: '', https_proxy: 'socks5://proxy.example' }),
    [`https_proxy: the scheme socks5:// is not supported; ${expected}`],
    'the lower-case one is read in its place',
  );

  // The command: exit 2, one line on stderr.
  const cli = runCli(t, ['sidecar'], { OUTRIGGER_APP_ID: 'proxy', HTTPS_PROXY: 'socks5://user:s3cret@127.0.0.1:1080' });
  t.same(await cli.exited, { code: 2, signal: null });
  t.equal(cli.stderr(), `outrigger: HTTPS_PROXY: the scheme socks5:// is not supported; ${expected}\n`);
  t.notMatch(cli.stdout() + cli.stderr(), 's3cret');
});
