// Outbound calls to https:// targets, against a real TLS server with
// certificates from a CA of the test's own (openssl): trusting a private CA
// (tls.caFile), mutual TLS (certFile, keyFile), another name to check
// (serverName), a rotated client certificate picked up without a restart, and
// TLS files that are missing or wrong refused at startup, naming the field.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { TargetInput } from '../src/config/target.ts';
import { createLogger } from '../src/telemetry/logger.ts';
import { issueCertificate } from './support/certificates.ts';
import { callUntil, secretVolume } from './support/secret-volume.ts';
import { closeEach, startTlsUpstream } from './support/tls-upstream.ts';
import { configProblems, sidecarWith } from './support/upstream.ts';

const dir = mkdtempSync(join(tmpdir(), 'outrigger-tls-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const ca = await issueCertificate(dir, 'ca', '/CN=Outrigger test CA', [
  'basicConstraints=critical,CA:TRUE',
  'keyUsage=critical,keyCertSign',
]);
const otherCa = await issueCertificate(dir, 'other-ca', '/CN=Another CA', [
  'basicConstraints=critical,CA:TRUE',
  'keyUsage=critical,keyCertSign',
]);
const leaf = ['basicConstraints=CA:FALSE'];
const serverLeaf = (names: string) => [...leaf, 'extendedKeyUsage=serverAuth', `subjectAltName=${names}`];
const clientLeaf = [...leaf, 'extendedKeyUsage=clientAuth'];
const signed = {
  /** For the name and the address the tests call. */
  server: await issueCertificate(
    dir,
    'server',
    '/CN=api.test.example',
    serverLeaf('DNS:api.test.example,IP:127.0.0.1'),
    'ca',
  ),
  /** For the name only. */
  named: await issueCertificate(dir, 'named', '/CN=api.test.example', serverLeaf('DNS:api.test.example'), 'ca'),
};
const client1 = await issueCertificate(dir, 'client-1', '/CN=client-1', clientLeaf, 'ca');
const client2 = await issueCertificate(dir, 'client-2', '/CN=client-2', clientLeaf, 'ca');

/** A sidecar whose target `api` makes one attempt per call; its client. */
async function sidecarFor(t: Test, target: Omit<TargetInput, 'name'>) {
  return (await sidecarWith(t, [{ name: 'api', retry: { maxAttempts: 1 }, ...target }])).call;
}

t.test('a target signed by a private CA: trusted with tls.caFile, refused without it', async (t) => {
  const upstream = await startTlsUpstream(t, signed.server);
  const baseUrl = `https://127.0.0.1:${upstream.port}`;

  const trusting = await sidecarFor(t, { baseUrl, tls: { caFile: ca.certPath } });
  const ok = await trusting('/v1/outbound/api/orders');
  t.equal(ok.status, 200, 'the call goes through over TLS');
  t.equal(ok.text, 'over TLS at /orders');

  const plain = await sidecarFor(t, { baseUrl });
  const refused = await plain('/v1/outbound/api/orders');
  t.equal(refused.status, 502, "Node.js's public CAs do not know the private one");
  t.match(refused.json(), {
    code: 'UPSTREAM_UNREACHABLE',
    detail: /TLS failed \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/,
  });

  const wrongCa = await sidecarFor(t, { baseUrl, tls: { caFile: otherCa.certPath } });
  t.match(
    (await wrongCa('/v1/outbound/api/orders')).json(),
    {
      status: 502,
      detail: /TLS failed \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/,
    },
    'a CA that did not sign the certificate is not trusted',
  );
  t.equal(upstream.seen.length, 1, 'only the trusted call reached the server');
});

t.test('mutual TLS: the client certificate from certFile and keyFile is shown to the target', async (t) => {
  const upstream = await startTlsUpstream(t, signed.server, { clientCa: ca });
  const baseUrl = `https://127.0.0.1:${upstream.port}`;
  const call = await sidecarFor(t, {
    baseUrl,
    tls: { caFile: ca.certPath, certFile: client1.certPath, keyFile: client1.keyPath },
  });
  t.equal((await call('/v1/outbound/api/orders')).status, 200);
  t.equal(upstream.handshakes[0]?.client, 'client-1', 'the target authenticated the client certificate');

  const anonymous = await sidecarFor(t, { baseUrl, tls: { caFile: ca.certPath } });
  const refused = await anonymous('/v1/outbound/api/orders');
  t.equal(refused.status, 502, 'a target that requires a client certificate refuses a call without one');
  t.equal(refused.json().code, 'UPSTREAM_UNREACHABLE');
  t.equal(upstream.seen.length, 1);
});

t.test('tls.serverName: the name sent as SNI and checked, when the URL names an address', async (t) => {
  const upstream = await startTlsUpstream(t, signed.named);
  const baseUrl = `https://127.0.0.1:${upstream.port}`;
  const named = await sidecarFor(t, { baseUrl, tls: { caFile: ca.certPath, serverName: 'api.test.example' } });
  t.equal((await named('/v1/outbound/api/orders')).status, 200, 'the certificate matches the configured name');
  t.same(
    upstream.seen[0],
    { url: '/orders', servername: 'api.test.example', host: `127.0.0.1:${upstream.port}`, apiKey: undefined },
    'SNI says the name; the host header stays the URL’s',
  );

  // With a host name in the URL, undici would take the name from the host header: the configured one wins.
  const byHostName = await sidecarFor(t, {
    baseUrl: `https://localhost:${upstream.port}`,
    tls: { caFile: ca.certPath, serverName: 'api.test.example' },
  });
  t.equal((await byHostName('/v1/outbound/api/orders')).status, 200, 'also when the URL names another host');
  t.same(upstream.seen[1], {
    url: '/orders',
    servername: 'api.test.example',
    host: `localhost:${upstream.port}`,
    apiKey: undefined,
  });
  t.same(
    upstream.handshakes.map(({ client }) => client),
    [undefined, undefined],
    'no client certificate was shown',
  );

  const unnamed = await sidecarFor(t, { baseUrl, tls: { caFile: ca.certPath } });
  const refused = await unnamed('/v1/outbound/api/orders');
  t.equal(refused.status, 502, 'without it, the certificate (no IP in it) does not match the address');
  t.match(refused.json(), { detail: /TLS failed \(ERR_TLS_CERT_ALTNAME_INVALID\)/ });
});

t.test('a rotated client certificate is used for new connections, without a restart', async (t) => {
  const upstream = await startTlsUpstream(t, signed.server, { clientCa: ca, answer: closeEach });
  const volume = secretVolume(dir, { 'tls.crt': client1.certPem, 'tls.key': client1.keyPem });
  const call = await sidecarFor(t, {
    baseUrl: `https://127.0.0.1:${upstream.port}`,
    tls: { caFile: ca.certPath, certFile: join(volume.dir, 'tls.crt'), keyFile: join(volume.dir, 'tls.key') },
  });
  t.equal((await call('/v1/outbound/api/a')).status, 200);
  t.equal(upstream.handshakes[0]?.client, 'client-1');

  volume.update({ 'tls.crt': client2.certPem, 'tls.key': client2.keyPem });
  const statuses = await callUntil(
    call,
    'a call made with the new certificate',
    () => upstream.handshakes.at(-1)?.client === 'client-2',
  );
  t.ok(
    statuses.every((status) => status === 200),
    'every call succeeded, with the old pair until the new one was read',
  );
  const sockets = upstream.handshakes.map(({ socket }) => socket);
  t.ok(sockets.length >= 3 && new Set(sockets).size === sockets.length, 'each call made a connection of its own');
});

t.test('TLS files that turn unusable leave the last good ones in use, with a warning', async (t) => {
  const upstream = await startTlsUpstream(t, signed.server, { clientCa: ca, answer: closeEach });
  const volume = secretVolume(dir, { 'tls.crt': client1.certPem, 'tls.key': client1.keyPem });
  const lines: Record<string, unknown>[] = [];
  const { call } = await sidecarWith(
    t,
    [
      {
        name: 'api',
        baseUrl: `https://127.0.0.1:${upstream.port}`,
        tls: { caFile: ca.certPath, certFile: join(volume.dir, 'tls.crt'), keyFile: join(volume.dir, 'tls.key') },
      },
    ],
    { appId: 'tls' },
    { logger: createLogger('warn', { write: (line: string) => lines.push(JSON.parse(line)) }) },
  );
  t.equal((await call('/v1/outbound/api/a')).status, 200);

  // A key that is not the certificate's: as a half-made rotation would leave them.
  volume.update({ 'tls.crt': client1.certPem, 'tls.key': client2.keyPem });
  const statuses = await callUntil(call, 'the warning', () => lines.length > 0);
  t.ok(
    statuses.every((status) => status === 200),
    'calls go on',
  );
  t.ok(
    upstream.handshakes.every(({ client }) => client === 'client-1'),
    'with the last good pair',
  );
  t.match(lines[0], {
    level: 'warn',
    target: 'api',
    problem: `keyFile: ${join(volume.dir, 'tls.key')} is not the private key of certFile`,
    msg: 'cannot use the TLS files as they are now; keeping the last ones',
  });
  t.notMatch(JSON.stringify(lines), /PRIVATE KEY/, 'no key material in the log');

  const warnings = lines.length;
  t.equal((await call('/v1/outbound/api/b')).status, 200, 'and the next call too');
  t.equal(upstream.handshakes.at(-1)?.client, 'client-1');
  t.equal(lines.length, warnings, 'no warning per connection: the files are tried again after 2 s');
});

t.test('TLS files that are missing or wrong stop the sidecar at startup, naming the field', async (t) => {
  const notPem = join(dir, 'not.pem');
  writeFileSync(notPem, 'not a certificate\n');
  const create = (tls: TargetInput['tls']) =>
    configProblems({ appId: 'tls', targets: [{ name: 'api', baseUrl: 'https://127.0.0.1:1', tls }] });

  t.same(await create({ caFile: join(dir, 'missing.pem') }), [
    `targets[0].tls.caFile: cannot read ${join(dir, 'missing.pem')} (ENOENT)`,
  ]);
  t.same(await create({ caFile: notPem }), [`targets[0].tls.caFile: ${notPem} holds no PEM certificate`]);
  t.same(await create({ certFile: client1.certPath, keyFile: client2.keyPath }), [
    `targets[0].tls.keyFile: ${client2.keyPath} is not the private key of certFile`,
  ]);
  t.same(await create({ certFile: client1.keyPath, keyFile: client1.keyPath }), [
    `targets[0].tls.certFile: ${client1.keyPath} holds no PEM certificate`,
  ]);
  t.same(await create({ caFile: ca.certPath, certFile: client1.certPath, keyFile: client1.keyPath }), [], 'all good');
});
