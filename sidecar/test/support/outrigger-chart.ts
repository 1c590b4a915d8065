// charts/outrigger under test: where it is, its Chart.yaml, the values that
// turn every option on, and helpers for what it renders.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:tls';
import type { Test } from 'tap';
import { parse as parseYaml } from 'yaml';
import { CHARTS } from './helm.ts';

export const CHART = `${CHARTS}outrigger`;
export const chartYaml = parseYaml(readFileSync(`${CHART}/Chart.yaml`, 'utf8')) as {
  version: string;
  appVersion: string;
};
/** The release namespace the tests install into. */
export const NS = 'outrigger-system';

/** Everything a user might change at once: the "non-default" render. */
export const edgeValues = {
  image: { repository: 'registry.example.com/outrigger', digest: `sha256:${'ab'.repeat(32)}` },
  imagePullSecrets: [{ name: 'regcred' }],
  injector: {
    replicas: 1,
    podLabels: { team: 'platform' },
    podAnnotations: { 'example.com/owner': 'platform' },
    nodeSelector: { 'kubernetes.io/os': 'linux' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'platform', effect: 'NoSchedule' }],
    topologySpreadConstraints: [
      { maxSkew: 2, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: {} },
    ],
  },
  webhook: {
    failurePolicy: 'Fail',
    timeoutSeconds: 3,
    // What values.yaml recommends with Fail: only namespaces that ask for it.
    namespaceSelectorExpressions: [{ key: 'outrigger.dev/injection', operator: 'In', values: ['enabled'] }],
    objectSelector: { matchExpressions: [{ key: 'outrigger.dev/skip', operator: 'DoesNotExist' }] },
  },
  certManager: { enabled: true, duration: '720h', renewBefore: '240h' },
  sidecar: {
    image: { repository: 'registry.example.com/outrigger-sidecar', tag: '0.1.0-debug' },
    imagePullPolicy: 'Always',
    httpPort: 4600,
    logLevel: 'debug',
    brokerUrlSecret: { name: 'rabbitmq', key: 'uri' },
    env: [{ name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://otel-collector.observability:4318' }],
    rbac: { namespaces: [{ namespace: 'demo' }, { namespace: 'apps', serviceAccounts: ['orders', 'billing'] }] },
  },
  networkPolicy: {
    metricsFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
  },
  metrics: { serviceMonitor: { enabled: true, labels: { release: 'prometheus' } } },
};

/** The PEM certificates of a bundle, in order. */
export const pems = (bundle: string) =>
  bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
/** base64 (a Secret's data, a caBundle) to text. */
export const b64 = (text: string | undefined) => Buffer.from(text ?? '', 'base64').toString('utf8');
/** Whether every label of `small` (not empty) is in `big`: a selector that selects. */
export const isSubset = (small: Record<string, string> = {}, big: Record<string, string> = {}) =>
  Object.keys(small).length > 0 && Object.entries(small).every(([key, value]) => big[key] === value);

/** A TLS handshake with this certificate, verified as the API server will: against caBundle, for that name. */
export async function trusted(t: Test, certPem: string, keyPem: string, bundle: string, serverName: string) {
  const cert = new X509Certificate(certPem);
  t.match(cert.subjectAltName, `DNS:${serverName}`, 'the certificate names the Service');
  const server = createServer({ cert: certPem, key: keyPem });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as { port: number };
    const authorized = await new Promise<boolean | Error>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, ca: bundle, servername: serverName }, () => {
        resolve(socket.authorized);
        socket.end();
      });
      socket.on('error', resolve);
    });
    t.equal(authorized, true, `a client trusting only caBundle accepts the certificate for ${serverName}`);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}
