// Reading a kubeconfig: what the sidecar takes from it (relative paths from the
// file's directory, inline data, tokens, TLS settings, the context's
// namespace) and the ConfigError for what it does not support.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { isConfigError } from '../../config/load.ts';
import type { Connection } from './connection.ts';
import { fromKubeconfig } from './kubeconfig.ts';
import { FileToken, StaticToken } from './token-source.ts';

const dir = mkdtempSync(join(tmpdir(), 'outrigger-kubeconfig-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, 'certs'));
writeFileSync(join(dir, 'certs', 'ca.pem'), 'CA FROM FILE');
writeFileSync(join(dir, 'certs', 'client.pem'), 'CERT FROM FILE');
writeFileSync(join(dir, 'certs', 'client.key'), 'KEY FROM FILE');
writeFileSync(join(dir, 'token'), 'token-from-file\n');
const b64 = (text: string) => Buffer.from(text).toString('base64');

let files = 0;
/** A kubeconfig in `dir` (YAML, as people write them) with one context; returns its path. */
function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>, context = {}): string {
  const path = join(dir, `config-${++files}`);
  const yaml = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: other\n  cluster: {server: "https://other.example"}`,
    `- name: test\n  cluster: ${JSON.stringify({ server: 'https://10.0.0.1:6443', ...cluster })}`,
    'users:',
    `- name: someone\n  user: ${JSON.stringify(user)}`,
    'contexts:',
    `- name: test\n  context: ${JSON.stringify({ cluster: 'test', user: 'someone', ...context })}`,
    'current-context: test',
  ].join('\n');
  writeFileSync(path, yaml);
  return path;
}

/** The one line of the ConfigError that loading `path` throws. */
function refusal(path: string): string {
  try {
    fromKubeconfig(path);
  } catch (error) {
    if (isConfigError(error)) return error.problems.join('\n');
    throw error;
  }
  return 'accepted';
}

const tokenOf = (connection: Connection) => connection.token?.token();

t.test('files relative to the kubeconfig, whatever the working directory', async (t) => {
  const connection = fromKubeconfig(
    kubeconfig(
      { 'certificate-authority': 'certs/ca.pem' },
      { 'client-certificate': 'certs/client.pem', 'client-key': './certs/client.key' },
      { namespace: 'shop' },
    ),
  );
  t.equal(connection.server.href, 'https://10.0.0.1:6443/');
  t.same(connection.tls, {
    rejectUnauthorized: true,
    ca: 'CA FROM FILE',
    cert: 'CERT FROM FILE',
    key: 'KEY FROM FILE',
  });
  t.equal(connection.token, undefined);
  t.equal(connection.namespace, 'shop');
});

t.test('inline data (base64) instead of files, and ahead of them when both are given', async (t) => {
  const connection = fromKubeconfig(
    kubeconfig(
      { 'certificate-authority-data': b64('CA DATA'), 'certificate-authority': 'certs/ca.pem' },
      { 'client-certificate-data': b64('CERT DATA'), 'client-key-data': b64('KEY DATA') },
    ),
  );
  t.match(connection.tls, { ca: 'CA DATA', cert: 'CERT DATA', key: 'KEY DATA' });
  t.equal(connection.namespace, undefined, 'no namespace in the context: none');
});

t.test('tokens: inline, or a file relative to the kubeconfig; inline wins', async (t) => {
  const inline = fromKubeconfig(kubeconfig({}, { token: 'abc', tokenFile: 'token' }));
  t.type(inline.token, StaticToken);
  t.equal(await tokenOf(inline), 'abc');
  const file = fromKubeconfig(kubeconfig({}, { tokenFile: 'token' }));
  t.type(file.token, FileToken, 'read again as it ages (token-source.test.ts)');
  t.equal(await tokenOf(file), 'token-from-file', 'trimmed');
});

t.test('TLS settings of the cluster; a server path is kept', async (t) => {
  const connection = fromKubeconfig(
    kubeconfig(
      { server: 'https://proxy.example/k8s/clusters/c-1/', 'insecure-skip-tls-verify': true, 'tls-server-name': 'api' },
      {},
    ),
  );
  t.same(connection.tls, { rejectUnauthorized: false, servername: 'api' });
  t.equal(connection.server.pathname, '/k8s/clusters/c-1/');
});

t.test('a context without a user is anonymous', async (t) => {
  const path = join(dir, 'anonymous');
  writeFileSync(
    path,
    JSON.stringify({
      clusters: [{ name: 'c', cluster: { server: 'http://127.0.0.1:8001' } }],
      contexts: [{ name: 'x', context: { cluster: 'c' } }],
      'current-context': 'x',
    }),
  );
  const connection = fromKubeconfig(path);
  t.equal(connection.server.protocol, 'http:', 'kubectl proxy, say');
  t.equal(connection.token, undefined);
});

t.test('what the sidecar does not support is refused by name', async (t) => {
  const cases: [Record<string, unknown>, Record<string, unknown>, RegExp][] = [
    [
      {},
      { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'aws' } },
      /uses exec \(a credential plugin\)/,
    ],
    [{}, { 'auth-provider': { name: 'gcp' } }, /uses auth-provider \(a credential plugin\)/],
    [{}, { username: 'admin', password: 'secret' }, /uses username and password/],
    [{}, { token: 't', as: 'someone-else' }, /uses impersonation \(as\)/],
    [
      { 'proxy-url': 'http://proxy:3128' },
      { token: 't' },
      /cluster "test" uses proxy-url, which the sidecar does not support/,
    ],
  ];
  for (const [cluster, user, expected] of cases) {
    const path = kubeconfig(cluster, user);
    const line = refusal(path);
    t.match(line, expected);
    t.match(line, `kubernetes.watch: cannot load a kubeconfig (${path}: `, 'names the file');
  }
  t.match(
    refusal(kubeconfig({}, { exec: {} })),
    /user "someone" uses exec \(a credential plugin\), which the sidecar does not support; give it a token, a tokenFile or a client certificate/,
  );
});

t.test('what is missing or wrong is named', async (t) => {
  const cases: [string, RegExp][] = [
    [kubeconfig({}, { 'client-certificate-data': b64('CERT') }), /client-certificate and client-key go together/],
    [kubeconfig({ 'certificate-authority': 'certs/missing.pem' }, {}), /cluster "test": certificate-authority: ENOENT/],
    [kubeconfig({}, { tokenFile: 'missing-token' }), /user "someone": tokenFile: ENOENT/],
    [kubeconfig({ server: 'ftp://x' }, {}), /server "ftp:\/\/x" is neither https:\/\/ nor http:\/\//],
    [kubeconfig({ server: '' }, {}), /cluster "test" has no server/],
    [kubeconfig({}, {}, { cluster: 'nowhere' }), /no cluster named "nowhere" in clusters/],
    [kubeconfig({}, {}, { user: 'nobody' }), /no user named "nobody" in users/],
    [kubeconfig({ 'insecure-skip-tls-verify': 'yes' }, {}), /insecure-skip-tls-verify must be true or false/],
  ];
  for (const [path, expected] of cases) t.match(refusal(path), expected);
  const noContext = join(dir, 'no-context');
  writeFileSync(noContext, 'clusters: []\n');
  t.match(refusal(noContext), /no-context: no current-context\)$/);
  const notYaml = join(dir, 'not-yaml');
  writeFileSync(notYaml, 'clusters: [\n');
  t.match(refusal(notYaml), /^kubernetes\.watch: cannot load a kubeconfig \(.*not-yaml: /);
  t.match(refusal(join(dir, 'absent')), /^kubernetes\.watch: cannot load a kubeconfig \(ENOENT: .*absent/);
});
