// A real Kubernetes control plane for one test: kine (the etcd API over
// sqlite) and kube-apiserver, both built by `make kube-tools` into .tools/bin,
// on free 127.0.0.1 ports, with a throwaway CA and an admin kubeconfig.
// There is no controller-manager and no scheduler: what the API server does by
// itself is real (validation, admission, webhooks, RBAC, CRDs and their
// Established condition); what controllers do does not happen (no `default`
// ServiceAccount in any namespace, namespaces never finish deleting, pods
// stay Pending).
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Test } from 'tap';
import { issueCertificate } from './certificates.ts';
import { freePort } from './ports.ts';

const BIN = new URL('../../../.tools/bin/', import.meta.url).pathname;
export const KUBE_APISERVER = join(BIN, 'kube-apiserver');
export const KINE = join(BIN, 'kine');
const BUILD_HINT = 'run `make kube-tools` (scripts/bootstrap/kube.sh; about 10 min on 2 cores the first time)';
const ISSUER = 'https://kubernetes.default.svc.cluster.local';

// Nothing may outlive its test, even when the test process dies without
// running teardown (tap's timeout, SIGTERM, SIGKILL). So each server runs under
// a shell that SIGKILLs it once the shell's stdin, a pipe from this process,
// reaches EOF; the shell exits with the server's status, so an early exit is
// still seen. The temp dir has a janitor on the same principle: a line on its
// stdin (stop()) removes it at once; EOF first gives the servers a moment to die.
const WATCHDOG = [
  'exec 3<&0',
  '"$@" </dev/null 3<&- & server=$!',
  '{ read -r _ <&3; kill -9 "$server"; } 2>/dev/null &',
  'wait "$server"; code=$?; kill $! 2>/dev/null; exit "$code"',
].join('\n');
const JANITOR = 'read -r _ || sleep 1; rm -rf "$1"';

/** A kubeconfig file for one identity, and the same loaded for @kubernetes/client-node. */
export interface Credentials {
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
}

export interface ControlPlane extends Credentials {
  /** https://127.0.0.1:PORT */
  server: string;
  caPem: string;
  /** The admin's client certificate (CN=outrigger-admin, O=system:masters) and key. */
  adminCert: string;
  adminKey: string;
  /** Credentials for a client certificate of this user and groups (RBAC sees exactly these). */
  asUser(user: string, groups?: string[]): Promise<Credentials>;
  /** Credentials for a ServiceAccount, with a bound token from the TokenRequest API. */
  asServiceAccount(namespace: string, name: string): Promise<Credentials>;
  /** A namespace with its `default` ServiceAccount, as the controller-manager would add. */
  createNamespace(name: string): Promise<void>;
  /** Kills both processes and removes the files (also done in t.teardown). */
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /** Extra kube-apiserver flags, e.g. `--feature-gates=...`. Later flags win. */
  apiServerArgs?: string[];
  /** How long to wait for /readyz: about 3 s here; the default allows for a busy machine. */
  readyTimeoutMs?: number;
}

// openssl's -subj syntax: `/` `+` `=` and `\` inside a value need a backslash.
const rdn = (value: string) => value.replace(/[/+=\\]/g, '\\$&');

function kubeconfig(server: string, caPem: string, user: string, credentials: Record<string, string>) {
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'outrigger-test', cluster: { server, 'certificate-authority-data': b64(caPem) } }],
    users: [{ name: user, user: credentials }],
    contexts: [{ name: 'outrigger-test', context: { cluster: 'outrigger-test', user } }],
    'current-context': 'outrigger-test',
  });
}

async function writeCredentials(path: string, text: string): Promise<Credentials> {
  await writeFile(path, text, { mode: 0o600 });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(text);
  return { kubeconfigPath: path, kubeConfig };
}

/** GET url with mutual TLS; the status and body, or undefined when nothing answers. */
function get(url: string, tls: { ca: string; cert: string; key: string }) {
  return new Promise<{ status: number; body: string } | undefined>((resolve) => {
    const req = request(url, { ...tls, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

const tail = (path: string) => {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '(no log)';
  }
};

export async function startControlPlane(t: Test, options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  for (const binary of [KUBE_APISERVER, KINE]) {
    if (!existsSync(binary)) throw new Error(`${binary} is missing: ${BUILD_HINT}`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'outrigger-kube-'));
  const children: ChildProcess[] = [];
  const janitor = spawn('/bin/sh', ['-c', JANITOR, 'janitor', dir], { stdio: ['pipe', 'ignore', 'ignore'] });
  const done = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;
  const exited = (child: ChildProcess) =>
    done(child) ? Promise.resolve() : new Promise((resolve) => child.once('exit', resolve));
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      await Promise.all(
        children.map((child) => {
          child.stdin?.end(); // the watchdog SIGKILLs the server: its data is thrown away anyway
          return exited(child);
        }),
      );
      janitor.stdin?.end('now\n');
      await exited(janitor);
    })();
    return stopped;
  };
  t.teardown(stop);

  const start = (binary: string, args: string[], log: string) => {
    const out = openSync(join(dir, log), 'a');
    const child = spawn('/bin/sh', ['-c', WATCHDOG, 'watchdog', binary, ...args], { stdio: ['pipe', out, out] });
    closeSync(out);
    children.push(child);
    return child;
  };

  try {
    const ca = await issueCertificate(dir, 'ca', '/CN=outrigger-test-ca', [
      'basicConstraints=critical,CA:TRUE',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const leaf = (usage: string) => ['basicConstraints=critical,CA:FALSE', `extendedKeyUsage=${usage}`];
    const serving = await issueCertificate(
      dir,
      'serving',
      '/CN=kube-apiserver',
      [...leaf('serverAuth'), 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
      'ca',
    );
    const admin = await issueCertificate(
      dir,
      'admin',
      '/CN=outrigger-admin/O=system:masters',
      leaf('clientAuth'),
      'ca',
    );
    // The key the API server signs ServiceAccount tokens with (ES256).
    const saKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(join(dir, 'sa.key'), saKey.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(join(dir, 'sa.pub'), saKey.publicKey.export({ type: 'spki', format: 'pem' }));

    const kinePort = await freePort();
    const kine = start(
      KINE,
      [
        `--listen-address=127.0.0.1:${kinePort}`,
        // synchronous=OFF: nothing here needs to survive a power cut, and fsyncs are slow on a shared disk.
        `--endpoint=sqlite://${join(dir, 'state.db')}?_journal_mode=WAL&_busy_timeout=30000&_synchronous=OFF`,
        '--metrics-bind-address=0', // its default is :8080 on every interface
      ],
      'kine.log',
    );

    const port = await freePort();
    const server = `https://127.0.0.1:${port}`;
    const apiserver = start(
      KUBE_APISERVER,
      [
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${port}`,
        `--etcd-servers=http://127.0.0.1:${kinePort}`,
        `--cert-dir=${dir}`,
        `--tls-cert-file=${serving.certPath}`,
        `--tls-private-key-file=${serving.keyPath}`,
        `--client-ca-file=${ca.certPath}`,
        `--service-account-issuer=${ISSUER}`,
        `--service-account-key-file=${join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--authorization-mode=RBAC',
        // The `kubernetes` Service's endpoints would point at 127.0.0.1, which nothing in a test needs.
        '--endpoint-reconciler-type=none',
        '--profiling=false',
        ...(options.apiServerArgs ?? []),
      ],
      'kube-apiserver.log',
    );

    const tls = { ca: ca.certPem, cert: admin.certPem, key: admin.keyPem };
    const timeoutMs = options.readyTimeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    let last: { status: number; body: string } | undefined;
    for (;;) {
      for (const [child, log] of [
        [kine, 'kine.log'],
        [apiserver, 'kube-apiserver.log'],
      ] as const) {
        if (done(child)) {
          throw new Error(
            `${log.replace('.log', '')} exited (${child.exitCode ?? child.signalCode}):\n${tail(join(dir, log))}`,
          );
        }
      }
      last = await get(`${server}/readyz`, tls);
      if (last?.status === 200) break;
      if (Date.now() >= deadline) {
        const status = last ? `${last.status} ${last.body}` : 'no answer';
        throw new Error(
          `kube-apiserver not ready after ${timeoutMs} ms (${status}):\n${tail(join(dir, 'kube-apiserver.log'))}`,
        );
      }
      await sleep(200);
    }

    const adminCredentials = await writeCredentials(
      join(dir, 'admin.kubeconfig'),
      kubeconfig(server, ca.certPem, 'outrigger-admin', {
        'client-certificate-data': Buffer.from(admin.certPem).toString('base64'),
        'client-key-data': Buffer.from(admin.keyPem).toString('base64'),
      }),
    );
    const core = adminCredentials.kubeConfig.makeApiClient(CoreV1Api);
    let identities = 0;

    return {
      ...adminCredentials,
      server,
      caPem: ca.certPem,
      adminCert: admin.certPem,
      adminKey: admin.keyPem,
      stop,
      async asUser(user, groups = []) {
        const name = `user-${++identities}`;
        const subject = `/CN=${rdn(user)}${groups.map((group) => `/O=${rdn(group)}`).join('')}`;
        const cert = await issueCertificate(dir, name, subject, leaf('clientAuth'), 'ca');
        return writeCredentials(
          join(dir, `${name}.kubeconfig`),
          kubeconfig(server, ca.certPem, user, {
            'client-certificate-data': Buffer.from(cert.certPem).toString('base64'),
            'client-key-data': Buffer.from(cert.keyPem).toString('base64'),
          }),
        );
      },
      async asServiceAccount(namespace, name) {
        const tokenRequest = await core.createNamespacedServiceAccountToken({
          namespace,
          name,
          // No audiences: the API server's own (the issuer).
          body: { spec: { audiences: [], expirationSeconds: 3600 } },
        });
        const token = tokenRequest.status?.token;
        if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
        return writeCredentials(
          join(dir, `sa-${++identities}.kubeconfig`),
          kubeconfig(server, ca.certPem, `system:serviceaccount:${namespace}:${name}`, { token }),
        );
      },
      async createNamespace(name) {
        await core.createNamespace({ body: { metadata: { name } } });
        // The ServiceAccount admission plugin refuses pods whose ServiceAccount is missing.
        await core.createNamespacedServiceAccount({ namespace: name, body: { metadata: { name: 'default' } } });
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
