// The injector in the real admission chain: `outrigger injector` as a
// process, registered as a MutatingWebhookConfiguration on a real
// kube-apiserver (support/kube.ts), and pods created through the API. What the
// API server stores is what a kubelet would run, so the sidecar is checked
// there, not in the webhook's answer.
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type TLSSocket } from 'node:tls';
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  type V1MutatingWebhook,
  type V1Pod,
} from '@kubernetes/client-node';
import t from 'tap';
import { VERSION } from '../src/version.ts';
import { asAdmin } from './support/admin-request.ts';
import { issueCertificate } from './support/certificates.ts';
import { startControlPlane } from './support/kube.ts';
import { configFile, exitFailure, runCli } from './support/sidecar-process.ts';
import { until } from './support/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'outrigger-injector-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const ca = await issueCertificate(dir, 'ca', '/CN=outrigger-injector-test-ca', [
  'basicConstraints=critical,CA:TRUE',
  'keyUsage=critical,keyCertSign,cRLSign',
]);
const servingExtensions = [
  'basicConstraints=critical,CA:FALSE',
  'extendedKeyUsage=serverAuth',
  'subjectAltName=IP:127.0.0.1',
];
const serving = await issueCertificate(dir, 'serving', '/CN=outrigger-injector', servingExtensions, 'ca');

const kube = await startControlPlane(t);
const core = kube.kubeConfig.makeApiClient(CoreV1Api);
const admission = kube.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
await kube.createNamespace('shop');

const injectorConfig = {
  image: 'registry.example/outrigger:test',
  brokerUrlSecret: { name: 'outrigger-broker', key: 'url' },
  env: [{ name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://collector.observability:4318' }],
};
const injector = runCli(t, [
  'injector',
  ...['--tls-cert', serving.certPath, '--tls-key', serving.keyPath],
  ...['--host', '127.0.0.1', '--port', '0', '--ops-port', '0', '--log-level', 'debug'],
  ...['--config', configFile(t, injectorConfig), '--drain', '3s'],
]);
const started = await until(
  'the injector to log "injector started"',
  () => injector.logs.find((line) => line.msg === 'injector started'),
  { failOn: exitFailure(injector, 'the injector') },
);
const webhookUrl = started.webhook as string;
const opsUrl = started.ops as string;

/** The webhook as a cluster admin would register it (docs/injector.md). */
const webhook = (name: string, url: string, reinvocationPolicy: 'IfNeeded' | 'Never'): V1MutatingWebhook => ({
  name,
  admissionReviewVersions: ['v1'],
  sideEffects: 'None',
  failurePolicy: 'Fail',
  reinvocationPolicy,
  timeoutSeconds: 10,
  clientConfig: { url, caBundle: Buffer.from(ca.certPem).toString('base64') },
  rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
  namespaceSelector: {
    matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] }],
  },
});
await admission.createMutatingWebhookConfiguration({
  body: {
    metadata: { name: 'outrigger-injector' },
    webhooks: [webhook('inject.outrigger.dev', webhookUrl, 'IfNeeded')],
  },
});

const container = { name: 'app', image: 'registry.example/orders:1', ports: [{ name: 'web', containerPort: 8080 }] };
const podBody = (name: string, annotations: Record<string, string>): V1Pod => ({
  metadata: { name, annotations },
  spec: { containers: [container] },
});
const sidecarOf = (pod: V1Pod) => pod.spec?.initContainers?.find((c) => c.name === 'outrigger');
/** Creates an annotated pod; its sidecar, as the API server stored the pod (after the webhook). */
const injectedSidecar = async (name: string) =>
  sidecarOf(
    await core.createNamespacedPod({ namespace: 'shop', body: podBody(name, { 'outrigger.dev/inject': 'true' }) }),
  );

// The API server picks up a new webhook configuration through an informer: wait until it calls ours.
await until(
  'the API server to call the webhook',
  async () => {
    const dryRun = await core.createNamespacedPod({
      namespace: 'shop',
      body: podBody('probe', { 'outrigger.dev/inject': 'true' }),
      dryRun: 'All',
    });
    return sidecarOf(dryRun) !== undefined;
  },
  { timeoutMs: 20_000, intervalMs: 100 },
);

/** What the pod's creation failed with: the API's status code and message. */
async function refusal(body: V1Pod): Promise<{ code: number; message: string }> {
  try {
    await core.createNamespacedPod({ namespace: 'shop', body });
  } catch (error) {
    if (!(error instanceof ApiException)) throw error;
    const status = JSON.parse(String(error.body)) as { message: string };
    return { code: error.code, message: status.message };
  }
  throw new Error('the pod was created');
}

/** GET or POST on the webhook's port with the test CA; the status and body. */
function callWebhook(path: string, method: string, body?: string, contentType = 'application/json') {
  return new Promise<{ status: number; body: string; fingerprint: string }>((resolve, reject) => {
    const url = new URL(path, webhookUrl);
    const req = request(
      url,
      { method, ca: ca.certPem, headers: { 'content-type': contentType }, timeout: 5_000, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: text,
            fingerprint: (res.socket as TLSSocket).getPeerCertificate().fingerprint256,
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

async function admissions(): Promise<Record<string, number>> {
  const text = await (await fetch(`${opsUrl}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const match of text.matchAll(/^outrigger_injector_admissions_total\{result="(\w+)"\} (\d+)$/gm)) {
    counts[match[1] as string] = Number(match[2]);
  }
  return counts;
}

t.test("a Deployment's annotated pod gets the native sidecar", async (t) => {
  const created = await core.createNamespacedPod({
    namespace: 'shop',
    body: {
      metadata: {
        generateName: 'orders-6f7c9d5b8-',
        labels: { app: 'orders', 'pod-template-hash': '6f7c9d5b8' },
        annotations: {
          'outrigger.dev/inject': 'true',
          'outrigger.dev/app-port': '8080',
          'outrigger.dev/config': 'orders-sidecar',
        },
        // As the ReplicaSet controller creates it (the ReplicaSet itself need not exist: no garbage collector runs).
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: 'orders-6f7c9d5b8',
            uid: '3f1c2a9e-1b7d-4c55-9a39-0f2d1e6c7b10',
            controller: true,
          },
        ],
      },
      spec: { containers: [container] },
    },
  });
  const name = created.metadata?.name as string;
  // Read back what the API server stored: it passed validation, as a kubelet will see it.
  const pod = await core.readNamespacedPod({ namespace: 'shop', name });
  t.equal(pod.metadata?.annotations?.['outrigger.dev/injected'], VERSION, 'the marker annotation');

  const initContainers = pod.spec?.initContainers ?? [];
  t.equal(initContainers.length, 1, 'one init container');
  const sidecar = initContainers[0];
  t.equal(sidecar?.name, 'outrigger');
  t.equal(sidecar?.restartPolicy, 'Always', 'a native sidecar');
  t.equal(sidecar?.image, 'registry.example/outrigger:test', "the config's image");
  t.same(sidecar?.args, ['sidecar', '--config', '/etc/outrigger/outrigger.yaml']);
  t.same(
    sidecar?.ports?.map((port) => [port.name, port.containerPort, port.hostPort]),
    [
      ['outrigger-http', 3600, undefined],
      ['outrigger-ops', 9464, undefined],
    ],
    'ports, none on the host',
  );
  t.match(sidecar?.startupProbe, { httpGet: { path: '/healthz', port: 'outrigger-ops' } });
  t.match(sidecar?.readinessProbe, { httpGet: { path: '/readyz', port: 'outrigger-ops' } });
  t.match(sidecar?.livenessProbe, { httpGet: { path: '/healthz', port: 'outrigger-ops' } });
  t.same(sidecar?.resources, { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } });
  t.match(sidecar?.securityContext, {
    runAsNonRoot: true,
    runAsUser: 65532,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  });

  const env = Object.fromEntries((sidecar?.env ?? []).map((variable) => [variable.name, variable]));
  t.equal(env.OUTRIGGER_APP_ID?.value, 'orders', "the app id is the Deployment's name");
  t.equal(env.OUTRIGGER_APP_PORT?.value, '8080');
  t.equal(env.OUTRIGGER_KUBERNETES?.value, 'true');
  t.equal(env.OUTRIGGER_NAMESPACE?.valueFrom?.fieldRef?.fieldPath, 'metadata.namespace', 'downward API');
  t.equal(env.OUTRIGGER_POD_NAME?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', 'downward API');
  t.match(env.OUTRIGGER_BROKER_URL?.valueFrom?.secretKeyRef, { name: 'outrigger-broker', key: 'url', optional: true });
  t.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT?.value, 'http://collector.observability:4318', "the config's extra env");

  const mounts = Object.fromEntries((sidecar?.volumeMounts ?? []).map((mount) => [mount.mountPath, mount]));
  t.equal(mounts['/tmp']?.name, 'outrigger-tmp', 'a writable /tmp');
  t.match(mounts['/etc/outrigger'], { name: 'outrigger-config', readOnly: true });
  // The built-in ServiceAccount plugin runs again after a webhook changes the pod: the sidecar can call the API.
  t.ok(mounts['/var/run/secrets/kubernetes.io/serviceaccount'], 'the ServiceAccount token is mounted in the sidecar');
  const volumes = Object.fromEntries((pod.spec?.volumes ?? []).map((volume) => [volume.name, volume]));
  t.ok(volumes['outrigger-tmp']?.emptyDir, 'the /tmp volume');
  t.match(volumes['outrigger-config']?.configMap, { name: 'orders-sidecar', items: [{ key: 'outrigger.yaml' }] });

  const app = pod.spec?.containers[0];
  t.same(
    app?.env?.find((variable) => variable.name === 'OUTRIGGER_URL'),
    { name: 'OUTRIGGER_URL', value: 'http://127.0.0.1:3600' },
    'the app container knows where the sidecar is',
  );
});

t.test("the sidecar's port names never shadow the app's", async (t) => {
  // Services and probes that name a port take a native sidecar's port of that name before the app's; the API
  // server warns of any duplicate name. Created with a plain request, since that warning is a response header.
  const body = podBody('named-ports', { 'outrigger.dev/inject': 'true' });
  const ports = ['http', 'ops', 'metrics', 'grpc'].map((name, index) => ({ name, containerPort: 8080 + index }));
  const spec = { containers: [{ ...container, ports }] };
  const answer = await asAdmin(kube, 'POST', '/api/v1/namespaces/shop/pods', {
    apiVersion: 'v1',
    kind: 'Pod',
    ...body,
    spec,
  });
  t.equal(answer.status, 201);
  t.equal(answer.headers.warning, undefined, 'no warning: no duplicate port name');
  const pod = await core.readNamespacedPod({ namespace: 'shop', name: 'named-ports' });
  t.ok(sidecarOf(pod), 'injected');
});

t.test('a pod without the ServiceAccount token: OUTRIGGER_KUBERNETES all the same', async (t) => {
  // The sidecar finds no token when it starts, and runs without the watch (kube-no-token.test.ts).
  const body = podBody('no-token', { 'outrigger.dev/inject': 'true' });
  const pod = await core.createNamespacedPod({
    namespace: 'shop',
    body: { ...body, spec: { ...body.spec, containers: [container], automountServiceAccountToken: false } },
  });
  const sidecar = sidecarOf(pod);
  t.same(
    sidecar?.env?.find((variable) => variable.name === 'OUTRIGGER_KUBERNETES'),
    { name: 'OUTRIGGER_KUBERNETES', value: 'true' },
  );
  t.same(
    sidecar?.volumeMounts?.map((mount) => mount.mountPath),
    ['/tmp'],
    'no ServiceAccount token mounted in the sidecar',
  );
});

t.test("outrigger.dev/volume-mounts: the pod's Secret volume, read-only in the sidecar", async (t) => {
  // The Secret need not exist for the pod to be stored (the kubelet would wait for it).
  const body = podBody('weather', {
    'outrigger.dev/inject': 'true',
    'outrigger.dev/volume-mounts': 'weather-token:/var/run/secrets/weather',
  });
  const volumes = [{ name: 'weather-token', secret: { secretName: 'weather-api' } }];
  await core.createNamespacedPod({ namespace: 'shop', body: { ...body, spec: { containers: [container], volumes } } });
  const pod = await core.readNamespacedPod({ namespace: 'shop', name: 'weather' });
  const mounts = sidecarOf(pod)?.volumeMounts ?? [];
  t.same(
    mounts.filter((mount) => mount.name === 'weather-token'),
    [{ name: 'weather-token', mountPath: '/var/run/secrets/weather', readOnly: true }],
    'mounted once, read-only',
  );
  t.ok(
    mounts.some((mount) => mount.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount'),
    'the ServiceAccount token is still mounted beside it',
  );
  t.notOk(
    pod.spec?.containers[0]?.volumeMounts?.some((mount) => mount.name === 'weather-token'),
    'the app container is left as it was',
  );
  t.same(
    pod.spec?.volumes?.filter((volume) => volume.name === 'weather-token').map((volume) => volume.secret?.secretName),
    ['weather-api'],
    'the volume is not added again',
  );

  const refused = await refusal(
    podBody('weather-no-volume', {
      'outrigger.dev/inject': 'true',
      'outrigger.dev/volume-mounts': 'weather-token:/var/run/secrets/weather',
    }),
  );
  t.equal(refused.code, 400);
  // The ServiceAccount admission plugin runs before the webhooks: the pod has its token's volume by then.
  t.match(
    refused.message,
    /^admission webhook "inject\.outrigger\.dev" denied the request: outrigger\.dev\/volume-mounts: "weather-token:\/var\/run\/secrets\/weather" is not valid: the pod has no volume "weather-token" in spec\.volumes \(it declares kube-api-access-\w+\)$/,
  );
});

t.test('outrigger.dev/outbox-url-secret: OUTRIGGER_OUTBOX_URL from the Secret, not optional', async (t) => {
  // The Secret need not exist for the pod to be stored: the kubelet resolves the secretKeyRef when it starts the
  // sidecar, and without the Secret or its key holds it (and so the app) in CreateContainerConfigError.
  await core.createNamespacedPod({
    namespace: 'shop',
    body: podBody('orders-outbox', {
      'outrigger.dev/inject': 'true',
      'outrigger.dev/outbox-url-secret': 'orders-db:url',
    }),
  });
  const pod = await core.readNamespacedPod({ namespace: 'shop', name: 'orders-outbox' });
  const env = sidecarOf(pod)?.env ?? [];
  t.same(
    env.filter((variable) => variable.name === 'OUTRIGGER_OUTBOX_URL'),
    [{ name: 'OUTRIGGER_OUTBOX_URL', valueFrom: { secretKeyRef: { name: 'orders-db', key: 'url', optional: false } } }],
    "the Secret of the pod's namespace, stored not optional",
  );
  t.same(
    env.slice(-3).map((variable) => variable.name),
    ['OUTRIGGER_BROKER_URL', 'OUTRIGGER_OUTBOX_URL', 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    "after the broker URL, before the file's env",
  );
  t.notOk(
    pod.spec?.containers[0]?.env?.some((variable) => variable.name === 'OUTRIGGER_OUTBOX_URL'),
    'the app container does not get it',
  );

  const refused = await refusal(
    podBody('orders-outbox-bad', {
      'outrigger.dev/inject': 'true',
      'outrigger.dev/outbox-url-secret': 'shop/orders-db:url',
    }),
  );
  t.equal(refused.code, 400);
  t.equal(
    refused.message,
    'admission webhook "inject.outrigger.dev" denied the request: outrigger.dev/outbox-url-secret: ' +
      '"shop/orders-db:url" is not valid: the Secret name "shop/orders-db" is not a DNS subdomain ' +
      '(lowercase letters, digits, "-" and "."); the Secret is the pod\'s namespace\'s, named without a namespace',
  );
  const stored = await core.listNamespacedPod({ namespace: 'shop' });
  t.notOk(
    stored.items.some((item) => item.metadata?.name === 'orders-outbox-bad'),
    'nothing stored',
  );
});

t.test('a pod without the annotation is stored as it was sent', async (t) => {
  await core.createNamespacedPod({ namespace: 'shop', body: podBody('plain', { team: 'payments' }) });
  const pod = await core.readNamespacedPod({ namespace: 'shop', name: 'plain' });
  t.same(pod.metadata?.annotations, { team: 'payments' });
  t.equal(pod.spec?.initContainers, undefined, 'no init containers');
  t.equal(pod.spec?.containers[0]?.env, undefined, 'no env added');
  t.notOk(
    pod.spec?.volumes?.some((volume) => volume.name.startsWith('outrigger')),
    'no volumes of ours',
  );
  await core.createNamespacedPod({
    namespace: 'shop',
    body: podBody('opted-out', { 'outrigger.dev/inject': 'false' }),
  });
  const optedOut = await core.readNamespacedPod({ namespace: 'shop', name: 'opted-out' });
  t.equal(optedOut.spec?.initContainers, undefined, '"false" is not "true"');
});

/**
 * Another mutating webhook, standing for whatever else a cluster runs (a mesh, a policy engine): it adds an
 * annotation to every pod it is sent. Answers in the same AdmissionReview format; closed when the file ends.
 */
async function startLaterWebhook(): Promise<string> {
  const server = createServer(
    { cert: readFileSync(serving.certPath), key: readFileSync(serving.keyPath) },
    (req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk: string) => {
        body += chunk;
      });
      req.on('end', () => {
        const { request: review } = JSON.parse(body) as { request: { uid: string } };
        const patch = [{ op: 'add', path: '/metadata/labels/later-webhook', value: 'seen' }];
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: {
              uid: review.uid,
              allowed: true,
              patchType: 'JSONPatch',
              patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
            },
          }),
        );
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  server.unref();
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

t.test('reinvoked after a later webhook changed the pod: still one sidecar', async (t) => {
  // Configurations are called in name order, so "zz-..." comes after "outrigger-injector"; it changes the pod,
  // so the API server calls ours again (reinvocationPolicy IfNeeded) with the pod that already has the sidecar.
  const later = webhook('later.test.outrigger.dev', await startLaterWebhook(), 'Never');
  later.failurePolicy = 'Ignore';
  later.objectSelector = { matchLabels: { 'test.outrigger.dev/later': 'true' } };
  await admission.createMutatingWebhookConfiguration({
    body: { metadata: { name: 'zz-later-webhook' }, webhooks: [later] },
  });
  const labels = { 'test.outrigger.dev/later': 'true' };
  await until(
    'the API server to call the later webhook',
    async () => {
      const dryRun = await core.createNamespacedPod({
        namespace: 'shop',
        body: { ...podBody('probe-later', {}), metadata: { name: 'probe-later', labels } },
        dryRun: 'All',
      });
      return dryRun.metadata?.labels?.['later-webhook'] === 'seen';
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );

  const body = podBody('reinvoked', {
    'outrigger.dev/inject': 'true',
    'outrigger.dev/volume-mounts': 'weather-token:/var/run/secrets/weather',
  });
  const volumes = [{ name: 'weather-token', secret: { secretName: 'weather-api' } }];
  await core.createNamespacedPod({
    namespace: 'shop',
    body: { metadata: { ...body.metadata, labels }, spec: { containers: [container], volumes } },
  });
  const pod = await core.readNamespacedPod({ namespace: 'shop', name: 'reinvoked' });
  t.equal(pod.metadata?.labels?.['later-webhook'], 'seen', 'the later webhook changed the pod');
  t.same(
    pod.spec?.initContainers?.map((container) => container.name),
    ['outrigger'],
    'one sidecar',
  );
  t.same(
    pod.spec?.containers[0]?.env?.filter((variable) => variable.name === 'OUTRIGGER_URL').length,
    1,
    'one OUTRIGGER_URL',
  );
  t.same(
    pod.spec?.initContainers?.[0]?.volumeMounts?.filter((mount) => mount.name === 'weather-token').length,
    1,
    'one mount of outrigger.dev/volume-mounts',
  );
  // The log lines come through a pipe: they may still be on their way once the pod exists.
  const reviewsOf = () => injector.logs.filter((line) => line.msg === 'admission review' && line.pod === 'reinvoked');
  const reviews = await until('the two reviews to be logged', () =>
    reviewsOf().length >= 2 ? reviewsOf() : undefined,
  );
  t.same(
    reviews.map((line) => [line.result, line.reason]),
    [
      ['injected', 'app id reinvoked from the pod name "reinvoked"'],
      ['skipped', 'already injected'],
    ],
    'our webhook was called twice: it injected, then left the pod as it was',
  );
});

t.test('bad annotations: the pod is refused with a message naming them', async (t) => {
  const refused = await refusal(
    podBody('bad', {
      'outrigger.dev/inject': 'true',
      'outrigger.dev/app-port': 'eighty',
      'outrigger.dev/memory-limit': '1GB',
    }),
  );
  t.equal(refused.code, 400);
  t.match(refused.message, /admission webhook "inject\.outrigger\.dev" denied the request/);
  t.match(refused.message, /outrigger\.dev\/app-port: "eighty" is not valid: expected a port number/);
  t.match(refused.message, /outrigger\.dev\/memory-limit: "1GB" is not valid: expected a Kubernetes quantity/);
  const stored = await core.listNamespacedPod({ namespace: 'shop' });
  t.notOk(
    stored.items.some((pod) => pod.metadata?.name === 'bad'),
    'nothing stored',
  );
});

t.test('a malformed review gets a 400 and the injector keeps serving', async (t) => {
  const before = await admissions();
  const notJson = await callWebhook('/mutate', 'POST', '{"apiVersion":');
  t.equal(notJson.status, 400);
  t.match(JSON.parse(notJson.body), { code: 'REQUEST_INVALID', detail: 'the body is not valid JSON' });
  const notReview = await callWebhook('/mutate', 'POST', JSON.stringify({ apiVersion: 'v1', kind: 'Pod' }));
  t.equal(notReview.status, 400);
  t.match(JSON.parse(notReview.body).detail, /not an AdmissionReview admission\.k8s\.io\/v1: apiVersion/);
  const wrongType = await callWebhook('/mutate', 'POST', 'x', 'text/plain');
  t.equal(wrongType.status, 415);
  t.equal((await callWebhook('/other', 'GET')).status, 404, 'nothing else on the webhook port');
  const after = await admissions();
  t.equal(after.error, (before.error ?? 0) + 3, 'each counted as an error');

  t.equal(injector.child.exitCode, null, 'still running');
  t.ok(await injectedSidecar('after-garbage'), 'still injecting');
});

t.test('metrics count each result', async (t) => {
  const counts = await admissions();
  t.ok((counts.injected ?? 0) >= 2, `injected: ${counts.injected}`);
  t.ok((counts.skipped ?? 0) >= 2, `skipped: ${counts.skipped}`);
  t.ok((counts.denied ?? 0) >= 1, `denied: ${counts.denied}`);
  const text = await (await fetch(`${opsUrl}/metrics`)).text();
  t.match(
    text,
    /^outrigger_injector_admission_duration_seconds_count\{result="injected"\} [1-9]/m,
    'latency histogram',
  );
  t.match(text, /^outrigger_injector_certificate_expiry_timestamp_seconds \d+/m);
  t.equal((await fetch(`${opsUrl}/readyz`)).status, 200);
  t.equal((await fetch(`${opsUrl}/healthz`)).status, 200);
});

t.test('a rotated certificate is served without a restart', async (t) => {
  const first = await callWebhook('/mutate', 'POST', '{}');
  t.equal(first.fingerprint, new X509Certificate(serving.certPem).fingerprint256, 'the first certificate');
  // As a Secret volume update does: new files swapped in by rename.
  const next = await issueCertificate(dir, 'serving-next', '/CN=outrigger-injector-rotated', servingExtensions, 'ca');
  renameSync(next.keyPath, serving.keyPath);
  renameSync(next.certPath, serving.certPath);
  const expected = new X509Certificate(next.certPem).fingerprint256;
  await until(
    'the new certificate to be served',
    async () => (await callWebhook('/healthz', 'GET')).fingerprint === expected,
    {
      timeoutMs: 15_000,
      intervalMs: 200,
    },
  );
  t.match(
    await (await fetch(`${opsUrl}/metrics`)).text(),
    /^outrigger_injector_certificate_reloads_total\{result="loaded"\} 1$/m,
  );
  t.ok(await injectedSidecar('after-rotation'), 'the API server trusts it too');
});

t.test('flags and ports: said as the sidecar says them', async (t) => {
  const tls = ['--tls-cert', serving.certPath, '--tls-key', serving.keyPath, '--host', '127.0.0.1'];
  const taken = new URL(webhookUrl).port;
  const second = runCli(t, ['injector', ...tls, '--port', taken, '--ops-port', '0']);
  t.same(await second.exited, { code: 1, signal: null }, 'the port is taken: exit 1');
  t.equal(second.stderr(), `outrigger: cannot listen on 127.0.0.1:${taken}: the port is in use\n`);
  for (const [flag, value] of [
    ['--port', '65536'],
    ['--ops-port', 'x'],
    ['--port', ''],
  ] as const) {
    const bad = runCli(t, ['injector', ...tls, flag, value]);
    t.same(await bad.exited, { code: 2, signal: null }, `${flag} ${JSON.stringify(value)}: exit 2`);
    t.equal(
      bad.stderr(),
      `outrigger: ${flag} ${JSON.stringify(value)}: expected a port number (0-65535; 0 picks a free port)\n`,
    );
  }
  for (const [value, expected] of [
    ['16s', 'at most 15s'],
    ['soon', 'expected a duration such as "500ms", "30s", "5m" or "PT10M"'],
  ] as const) {
    const bad = runCli(t, ['injector', ...tls, '--drain', value]);
    t.same(await bad.exited, { code: 2, signal: null }, `--drain ${value}: exit 2`);
    t.equal(bad.stderr(), `outrigger: --drain "${value}": ${expected}\n`);
  }
});

t.test('SIGTERM: answers reviews for the drain while not ready, then stops cleanly with exit code 0', async (t) => {
  const stopped = injector.stop('SIGTERM');
  await until('/readyz to answer 503', async () => (await fetch(`${opsUrl}/readyz`)).status === 503);
  // The Service would still send reviews here until its endpoints drop the pod: they are answered.
  t.ok(await injectedSidecar('while-draining'), 'injected while draining');
  const review = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'draining', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: {} },
  };
  const answer = await callWebhook('/mutate', 'POST', JSON.stringify(review));
  t.equal(answer.status, 200, 'a new connection is still served');
  t.match(JSON.parse(answer.body), { response: { uid: 'draining', allowed: true } });
  t.equal(injector.child.exitCode, null, 'still running');
  t.ok(
    injector.logs.some(
      (line) =>
        line.msg === 'injector stopping: still answering reviews while the Service drops this pod' &&
        line.drainMs === 3000,
    ),
    'the drain is logged',
  );

  const exit = await stopped;
  t.same(exit, { code: 0, signal: null });
  t.ok(injector.logs.some((line) => line.msg === 'injector stopped'));
  // No TLS session can start any more.
  const refused = await new Promise<boolean>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(webhookUrl).port), ca: ca.certPem });
    socket.on('secureConnect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(true));
  });
  t.ok(refused, 'the port is closed');
});

t.test('SIGTERM with a review that never ends: its connection is cut after the 10 s grace, exit code 1', async (t) => {
  const stuck = runCli(t, [
    'injector',
    ...['--tls-cert', serving.certPath, '--tls-key', serving.keyPath],
    ...['--host', '127.0.0.1', '--port', '0', '--ops-port', '0', '--drain', '0s'],
  ]);
  const up = await until(
    'the injector to log "injector started"',
    () => stuck.logs.find((line) => line.msg === 'injector started'),
    { failOn: exitFailure(stuck, 'the injector') },
  );
  // The headers and part of the body: in flight until the webhook's 30 s request timeout.
  const socket = connect({ host: '127.0.0.1', port: Number(new URL(String(up.webhook)).port), ca: ca.certPem });
  socket.on('error', () => {});
  const closed = once(socket, 'close');
  await once(socket, 'secureConnect');
  socket.write(
    'POST /mutate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"kind":',
  );
  await sleep(500);

  const signalled = Date.now();
  const exit = await stuck.stop('SIGTERM');
  const tookMs = Date.now() - signalled;
  t.same(exit, { code: 1, signal: null }, 'exit code 1: not a clean stop');
  t.ok(tookMs >= 9_500 && tookMs < 15_000, `exits after the 10 s grace, not left running for SIGKILL (${tookMs} ms)`);
  t.ok(stuck.logs.some((line) => line.msg === 'reviews still in flight after the grace period'));
  await closed;
  t.pass('the connection is cut');
});
