// charts/outrigger against what a cluster operator relies on: it lints and
// renders cleanly, its schema catches typos, every object is labelled and
// wired to the others, the webhook's certificate is really trusted by its
// caBundle and rotates on upgrade, and, in a real kube-apiserver, everything
// (CRDs included) is accepted, the sidecar's ServiceAccount may do exactly
// what it needs and nothing more, and the injector's may do nothing.

import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, createServer } from 'node:tls';
import {
  ApiException,
  ApiextensionsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubernetesObject,
  KubernetesObjectApi,
  RbacAuthorizationV1Api,
  type V1ConfigMap,
  type V1CustomResourceDefinition,
  type V1Deployment,
  type V1MutatingWebhookConfiguration,
  type V1NetworkPolicy,
  type V1PodDisruptionBudget,
  type V1RoleBinding,
  type V1Secret,
  type V1Service,
} from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import { parse as parseYaml } from 'yaml';
import { CHARTS, createHelm, parseObjects } from './support/helm.ts';
import { type ControlPlane, startControlPlane } from './support/kube.ts';
import { runCli } from './support/sidecar-process.ts';
import { until } from './support/wait.ts';

const CHART = `${CHARTS}outrigger`;
const chartYaml = parseYaml(readFileSync(`${CHART}/Chart.yaml`, 'utf8')) as { version: string; appVersion: string };
const NS = 'outrigger-system';
const helm = await createHelm(t);

/** Everything a user might change at once: the "non-default" render. */
const edgeValues = {
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

const byKind = <T extends KubernetesObject>(objects: KubernetesObject[], kind: string): T[] =>
  objects.filter((object) => object.kind === kind) as T[];
const one = <T extends KubernetesObject>(objects: KubernetesObject[], kind: string): T => {
  const found = byKind<T>(objects, kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, rendered ${found.length}`);
  return found[0] as T;
};
const pems = (bundle: string) => bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
const b64 = (text: string | undefined) => Buffer.from(text ?? '', 'base64').toString('utf8');
const isSubset = (small: Record<string, string> = {}, big: Record<string, string> = {}) =>
  Object.keys(small).length > 0 && Object.entries(small).every(([key, value]) => big[key] === value);

t.test('helm lint --strict is clean with default and non-default values', async (t) => {
  for (const [name, values] of [
    ['default', {}],
    ['non-default', edgeValues],
    [
      'cert-manager with an existing ClusterIssuer',
      { certManager: { enabled: true, issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer' } } },
    ],
  ] as const) {
    const result = await helm.run(['lint', '--strict', CHART, '--namespace', NS, ...(await helm.values(values))]);
    t.equal(result.code, 0, `${name}: ${result.stdout}${result.stderr}`);
    t.notMatch(result.stdout, /\[(WARNING|ERROR)\]/, `${name}: no warnings`);
  }
});

t.test('values.schema.json refuses typos and wrong types, naming the value', async (t) => {
  for (const [values, message] of [
    [{ injector: { replica: 3 } }, /\/injector.*additional properties 'replica' not allowed/],
    [{ webhook: { failurePolicy: 'Sometimes' } }, /\/webhook\/failurePolicy.*'Ignore', 'Fail'/],
    [{ certManager: { enabled: 'yes' } }, /\/certManager\/enabled.*boolean/],
    [{ sidecar: { rbac: { namespaces: [{ namespace: 'Demo_NS' }] } } }, /\/sidecar\/rbac\/namespaces\/0\/namespace/],
    [{ sidecar: { logLevel: 'loud' } }, /\/sidecar\/logLevel/],
    [{ metrics: { serviceMonitor: { enable: true } } }, /additional properties 'enable' not allowed/],
  ] as const) {
    const args = [CHART, '--namespace', NS, ...(await helm.values(values))];
    const lint = await helm.run(['lint', '--strict', ...args]);
    t.not(lint.code, 0, `lint fails: ${JSON.stringify(values)}`);
    t.match(lint.stdout + lint.stderr, message, 'lint names the value');
    const template = await helm.run(['template', 'outrigger', ...args]);
    t.not(template.code, 0, 'template fails too');
    t.match(template.stderr, message, 'template names the value');
  }
});

t.test('a cluster older than 1.32 is refused (native sidecars, CRD selectableFields)', async (t) => {
  const old = await helm.run(['template', 'outrigger', CHART, '--kube-version', '1.31.4']);
  t.not(old.code, 0);
  t.match(old.stderr, /kubeVersion: >=1\.32\.0-0 which is incompatible with Kubernetes v1\.31\.4/);
  const current = await helm.run(['template', 'outrigger', CHART, '--kube-version', '1.32.0']);
  t.equal(current.code, 0, current.stderr);
});

t.test('every object carries the app.kubernetes.io labels, and selectors select', async (t) => {
  for (const [name, values] of [
    ['default', {}],
    ['non-default', edgeValues],
  ] as const) {
    const objects = await helm.template(CHART, 'outrigger', NS, values);
    t.ok(objects.length >= 8, `${name}: rendered ${objects.length} objects`);
    for (const object of objects) {
      const labels = object.metadata?.labels ?? {};
      t.match(
        labels,
        {
          'app.kubernetes.io/name': 'outrigger',
          'app.kubernetes.io/instance': 'outrigger',
          'app.kubernetes.io/version': chartYaml.appVersion,
          'app.kubernetes.io/managed-by': 'Helm',
          'app.kubernetes.io/component': /^(injector|sidecar)$/,
          'helm.sh/chart': `outrigger-${chartYaml.version}`,
        },
        `${name}: ${object.kind} ${object.metadata?.name}`,
      );
    }
    const deployment = one<V1Deployment>(objects, 'Deployment');
    const podLabels = deployment.spec?.template.metadata?.labels;
    t.ok(isSubset(deployment.spec?.selector.matchLabels, podLabels), `${name}: the Deployment selects its pods`);
    t.equal(podLabels?.['app.kubernetes.io/component'], 'injector');
    const service = one<V1Service>(objects, 'Service');
    t.ok(isSubset(service.spec?.selector, podLabels), `${name}: the Service selects the injector pods`);
    for (const pdb of byKind<V1PodDisruptionBudget>(objects, 'PodDisruptionBudget')) {
      t.ok(isSubset(pdb.spec?.selector?.matchLabels, podLabels), `${name}: the PDB selects the injector pods`);
    }
  }
});

t.test('the webhook: the injector contract, and a certificate its caBundle trusts', async (t) => {
  const objects = await helm.template(CHART, 'outrigger', NS);
  const config = one<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration');
  t.equal(config.webhooks?.length, 1);
  const webhook = config.webhooks?.[0];
  t.match(webhook, {
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    reinvocationPolicy: 'IfNeeded',
    failurePolicy: 'Ignore',
    timeoutSeconds: 5,
    clientConfig: { service: { name: 'outrigger-injector', namespace: NS, path: '/mutate', port: 443 } },
    rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
  });
  t.same(webhook?.namespaceSelector?.matchExpressions, [
    { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', NS] },
  ]);

  const service = one<V1Service>(objects, 'Service');
  t.same(
    service.spec?.ports?.map(({ name, port, targetPort }) => ({ name, port, targetPort })),
    [{ name: 'https', port: 443, targetPort: 'webhook' }],
    'only the webhook port is exposed (no metrics port without a ServiceMonitor)',
  );
  const deployment = one<V1Deployment>(objects, 'Deployment');
  const container = deployment.spec?.template.spec?.containers[0];
  t.equal(container?.ports?.find((port) => port.name === 'webhook')?.containerPort, 8443);
  t.same(container?.args, [
    'injector',
    ...['--tls-cert', '/etc/outrigger/tls/tls.crt', '--tls-key', '/etc/outrigger/tls/tls.key'],
    ...['--port', '8443', '--ops-port', '9464', '--config', '/etc/outrigger/config/config.yaml'],
    ...['--log-level', 'info'],
  ]);
  const secret = one<V1Secret>(objects, 'Secret');
  t.equal(
    deployment.spec?.template.spec?.volumes?.find((volume) => volume.name === 'tls')?.secret?.secretName,
    secret.metadata?.name,
    'the injector mounts the certificate Secret',
  );

  const bundle = b64(webhook?.clientConfig.caBundle);
  t.equal(bundle, b64(secret.data?.['ca.crt']), 'caBundle is the Secret’s CA (no previous CA under helm template)');
  await trusted(
    t,
    b64(secret.data?.['tls.crt']),
    b64(secret.data?.['tls.key']),
    bundle,
    `outrigger-injector.${NS}.svc`,
  );
});

/** A TLS handshake with this certificate, verified as the API server will: against caBundle, for that name. */
async function trusted(t: Test, certPem: string, keyPem: string, bundle: string, serverName: string) {
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

t.test('the rendered args, config file and certificate run the real injector', async (t) => {
  // What the Deployment's pod gets, in a temp dir instead of /etc/outrigger: the
  // Secret and ConfigMap as mounted files, the container's args unchanged but
  // for the paths, and loopback ports for this machine.
  const objects = await helm.template(CHART, 'outrigger', NS, { sidecar: edgeValues.sidecar });
  const dir = mkdtempSync(join(tmpdir(), 'outrigger-chart-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const secret = one<V1Secret>(objects, 'Secret');
  mkdirSync(join(dir, 'tls'));
  mkdirSync(join(dir, 'config'));
  for (const key of ['tls.crt', 'tls.key']) writeFileSync(join(dir, 'tls', key), b64(secret.data?.[key]));
  writeFileSync(join(dir, 'config', 'config.yaml'), one<V1ConfigMap>(objects, 'ConfigMap').data?.['config.yaml'] ?? '');
  const args = (one<V1Deployment>(objects, 'Deployment').spec?.template.spec?.containers[0]?.args ?? []).map(
    (arg, i, all) => {
      if (all[i - 1] === '--port' || all[i - 1] === '--ops-port') return '0';
      return arg.replace(/^\/etc\/outrigger\//, `${dir}/`);
    },
  );
  const injector = runCli(t, [...args, '--host', '127.0.0.1']);
  const started = await until('the injector to log "injector started"', () => {
    if (injector.child.exitCode !== null) throw new Error(`injector exited: ${injector.stderr()}`);
    return injector.logs.find((line) => line.msg === 'injector started');
  });
  t.equal((await fetch(`${started.ops}/readyz`)).status, 200, 'ready on the ops port the probes use');

  // A review as the API server sends it, over TLS trusting only the caBundle, for the Service's name.
  const bundle = b64(
    one<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration').webhooks?.[0]?.clientConfig.caBundle,
  );
  const review = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'b2c5a3e8-0000-4000-8000-000000000001',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'demo',
      operation: 'CREATE',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'orders', namespace: 'demo', annotations: { 'outrigger.dev/inject': 'true' } },
        spec: { containers: [{ name: 'app', image: 'registry.example.com/orders:1' }] },
      },
    },
  };
  const { port } = new URL(String(started.webhook));
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/mutate',
        method: 'POST',
        ca: bundle,
        servername: `outrigger-injector.${NS}.svc`,
        headers: { 'content-type': 'application/json' },
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('the injector did not answer')));
    req.on('error', reject);
    req.end(JSON.stringify(review));
  });
  t.equal(answer.status, 200);
  const response = JSON.parse(answer.body).response as { allowed: boolean; patch?: string };
  t.equal(response.allowed, true);
  const patch = JSON.stringify(JSON.parse(b64(response.patch)));
  t.match(patch, 'registry.example.com/outrigger-sidecar:0.1.0-debug', 'the sidecar image from the chart’s config');
  t.match(patch, /"name":"OUTRIGGER_BROKER_URL","valueFrom":\{"secretKeyRef":\{"name":"rabbitmq","key":"uri"/);
  t.match(patch, 'OTEL_EXPORTER_OTLP_ENDPOINT', 'the extra env');
  await injector.stop();
});

t.test('non-default values reach the webhook, the certificate and the injector config', async (t) => {
  const objects = await helm.template(CHART, 'outrigger', NS, edgeValues);
  const config = one<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration');
  const webhook = config.webhooks?.[0];
  t.equal(webhook?.failurePolicy, 'Fail');
  t.equal(webhook?.timeoutSeconds, 3);
  t.same(webhook?.namespaceSelector?.matchExpressions?.slice(1), edgeValues.webhook.namespaceSelectorExpressions);
  t.same(webhook?.objectSelector, edgeValues.webhook.objectSelector);
  t.notOk(webhook?.clientConfig.caBundle, 'no caBundle of its own: cert-manager injects it');
  t.equal(config.metadata?.annotations?.['cert-manager.io/inject-ca-from'], `${NS}/outrigger-injector`);
  t.equal(byKind(objects, 'Secret').length, 0, 'no generated Secret');
  const certificate = byKind<KubernetesObject & { spec: Record<string, unknown> }>(objects, 'Certificate').find(
    (c) => c.metadata?.name === 'outrigger-injector',
  );
  const deployment = one<V1Deployment>(objects, 'Deployment');
  const pod = deployment.spec?.template;
  t.equal(
    pod?.spec?.volumes?.find((volume) => volume.name === 'tls')?.secret?.secretName,
    certificate?.spec.secretName,
    'the injector mounts the Secret cert-manager writes',
  );
  t.ok(
    (certificate?.spec.dnsNames as string[] | undefined)?.includes(`outrigger-injector.${NS}.svc`),
    'for the Service name',
  );
  t.equal(pod?.metadata?.annotations?.['checksum/tls'], undefined, 'cert-manager renewals do not roll the pods');
  t.equal(pod?.spec?.containers[0]?.image, `${edgeValues.image.repository}@${edgeValues.image.digest}`);
  t.same(pod?.spec?.imagePullSecrets, [{ name: 'regcred' }]);
  t.equal(pod?.metadata?.labels?.team, 'platform');
  t.same(pod?.spec?.topologySpreadConstraints, edgeValues.injector.topologySpreadConstraints);
  t.equal(byKind(objects, 'PodDisruptionBudget').length, 0, 'no PDB with one replica: it would block every drain');

  const injectorConfig = parseYaml(one<V1ConfigMap>(objects, 'ConfigMap').data?.['config.yaml'] ?? '');
  t.same(injectorConfig, {
    image: 'registry.example.com/outrigger-sidecar:0.1.0-debug',
    imagePullPolicy: 'Always',
    httpPort: 4600,
    opsPort: 9464,
    logLevel: 'debug',
    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
    brokerUrlSecret: { name: 'rabbitmq', key: 'uri' },
    env: edgeValues.sidecar.env,
  });

  const monitor = one<KubernetesObject & { spec: { selector: { matchLabels: Record<string, string> } } }>(
    objects,
    'ServiceMonitor',
  );
  const service = one<V1Service>(objects, 'Service');
  t.ok(isSubset(monitor.spec.selector.matchLabels, service.metadata?.labels), 'the ServiceMonitor selects the Service');
  t.match(monitor.spec, { endpoints: [{ port: 'metrics', path: '/metrics' }] });
  t.equal(service.spec?.ports?.find((port) => port.name === 'metrics')?.targetPort, 'ops');
  t.equal(monitor.metadata?.labels?.release, 'prometheus');
});

t.test('defaults: the injector config, a PDB, and checksums that roll the pods on change', async (t) => {
  const objects = await helm.template(CHART, 'outrigger', NS);
  const injectorConfig = parseYaml(one<V1ConfigMap>(objects, 'ConfigMap').data?.['config.yaml'] ?? '');
  t.same(injectorConfig, {
    image: `ghcr.io/outrigger/outrigger:${chartYaml.appVersion}`,
    imagePullPolicy: 'IfNotPresent',
    httpPort: 3600,
    opsPort: 9464,
    logLevel: 'info',
    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
    env: [],
  });
  const deployment = one<V1Deployment>(objects, 'Deployment');
  t.equal(deployment.spec?.replicas, 2);
  t.match(one<V1PodDisruptionBudget>(objects, 'PodDisruptionBudget').spec, { minAvailable: 1 });

  const changed = await helm.template(CHART, 'outrigger', NS, { sidecar: { logLevel: 'debug' } });
  const annotations = (objects: KubernetesObject[]) =>
    one<V1Deployment>(objects, 'Deployment').spec?.template.metadata?.annotations ?? {};
  t.not(annotations(changed)['checksum/config'], annotations(objects)['checksum/config'], 'config change rolls');
  t.not(
    annotations(changed)['checksum/tls'],
    annotations(objects)['checksum/tls'],
    'each render has a new certificate',
  );
});

t.test('the injector runs locked down and with no API access', async (t) => {
  for (const values of [{}, edgeValues]) {
    const objects = await helm.template(CHART, 'outrigger', NS, values);
    const pod = one<V1Deployment>(objects, 'Deployment').spec?.template.spec;
    t.match(pod?.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    t.equal(pod?.automountServiceAccountToken, false, 'no token in the pod');
    t.equal(pod?.hostNetwork, undefined);
    t.match(pod?.containers[0]?.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    t.ok(pod?.containers[0]?.resources?.requests?.memory, 'resources set');
    t.match(pod?.containers[0], {
      livenessProbe: { httpGet: { path: '/healthz', port: 'ops' } },
      readinessProbe: { httpGet: { path: '/readyz', port: 'ops' } },
    });
    t.equal(
      one<KubernetesObject & { automountServiceAccountToken?: boolean }>(objects, 'ServiceAccount')
        .automountServiceAccountToken,
      false,
    );
    const policy = one<V1NetworkPolicy>(objects, 'NetworkPolicy');
    const podLabels = one<V1Deployment>(objects, 'Deployment').spec?.template.metadata?.labels;
    t.ok(isSubset(policy.spec?.podSelector?.matchLabels, podLabels), 'the NetworkPolicy selects the injector pods');
    t.same(policy.spec?.policyTypes, ['Ingress', 'Egress']);
    t.same(policy.spec?.egress, [], 'no egress: the injector calls nothing');
    const containerPorts = pod?.containers[0]?.ports?.map((port) => port.name);
    t.same(
      policy.spec?.ingress?.flatMap((rule) => rule.ports?.map((port) => port.port) ?? []),
      containerPorts,
      'ingress on the webhook and ops ports only',
    );
    const bindings = byKind<V1RoleBinding>(objects, 'RoleBinding').concat(byKind(objects, 'ClusterRoleBinding'));
    t.notOk(
      bindings.some((binding) => binding.subjects?.some((subject) => subject.name === 'outrigger-injector')),
      'nothing is bound to the injector’s ServiceAccount',
    );
  }
});

// ---- In a real API server ----------------------------------------------------

/** A request as the cluster admin (client certificate); the HTTP status and body. */
function asAdmin(kube: ControlPlane, method: string, path: string, body?: object) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      `${kube.server}${path}`,
      {
        method,
        ca: kube.caPem,
        cert: kube.adminCert,
        key: kube.adminKey,
        headers: { 'content-type': 'application/json' },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

/**
 * Creates the object with dryRun=All and fieldValidation=Strict, so an unknown
 * or misspelt field is an error (helm itself only logs a warning for those).
 */
async function strictDryRun(kube: ControlPlane, object: KubernetesObject) {
  const base = `${object.apiVersion?.includes('/') ? '/apis' : '/api'}/${object.apiVersion}`;
  const discovery = await asAdmin(kube, 'GET', base);
  const resources = (
    JSON.parse(discovery.body) as { resources?: { name: string; kind: string; namespaced: boolean }[] }
  ).resources;
  const resource = resources?.find((r) => r.kind === object.kind && !r.name.includes('/'));
  if (!resource) throw new Error(`the API server does not serve ${object.apiVersion} ${object.kind}`);
  const namespace = resource.namespaced ? `/namespaces/${object.metadata?.namespace ?? 'default'}` : '';
  return asAdmin(kube, 'POST', `${base}${namespace}/${resource.name}?dryRun=All&fieldValidation=Strict`, object);
}

/**
 * TEST FIXTURES, not the real CRDs (those are not available offline): the
 * cert-manager and prometheus-operator kinds the chart renders, with schemas
 * covering exactly the fields the chart uses, so a strict dry-run rejects a
 * misspelt field and the objects really go through the API server.
 */
function fixtureCrd(group: string, kind: string, spec: object): V1CustomResourceDefinition {
  const plural = `${kind.toLowerCase()}s`;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}`, labels: { 'outrigger.dev/test-fixture': 'true' } },
    spec: {
      group,
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', ...spec } } } },
        },
      ],
    },
  };
}
const string = { type: 'string' };
const strings = { type: 'array', items: string };
const stringMap = { type: 'object', additionalProperties: string };
const FIXTURE_CRDS = [
  fixtureCrd('cert-manager.io', 'Issuer', {
    properties: {
      selfSigned: { type: 'object' },
      ca: { type: 'object', required: ['secretName'], properties: { secretName: string } },
    },
  }),
  fixtureCrd('cert-manager.io', 'Certificate', {
    required: ['secretName', 'issuerRef'],
    properties: {
      secretName: string,
      commonName: string,
      dnsNames: strings,
      duration: string,
      renewBefore: string,
      isCA: { type: 'boolean' },
      usages: strings,
      privateKey: {
        type: 'object',
        properties: {
          algorithm: { type: 'string', enum: ['RSA', 'ECDSA', 'Ed25519'] },
          size: { type: 'integer' },
          rotationPolicy: { type: 'string', enum: ['Never', 'Always'] },
        },
      },
      issuerRef: {
        type: 'object',
        required: ['name'],
        properties: { name: string, kind: string, group: string },
      },
    },
  }),
  fixtureCrd('monitoring.coreos.com', 'ServiceMonitor', {
    required: ['selector'],
    properties: {
      selector: { type: 'object', properties: { matchLabels: stringMap } },
      namespaceSelector: { type: 'object', properties: { matchNames: strings, any: { type: 'boolean' } } },
      endpoints: {
        type: 'array',
        items: { type: 'object', properties: { port: string, path: string, interval: string, scrapeTimeout: string } },
      },
    },
  }),
];

const established = (crd: V1CustomResourceDefinition | undefined) =>
  crd?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;

/**
 * The HTTP status a call ends with: 200 when it succeeds, else the API's error
 * code. 429 is retried, as client-go does: a custom resource's watch cache
 * answers "storage is (re)initializing" for a moment after the CRD is served.
 */
async function statusOf(call: () => Promise<unknown>): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      await call();
      return 200;
    } catch (error) {
      if (!(error instanceof ApiException)) throw error;
      if (error.code !== 429 || attempt === 50) return error.code;
      await sleep(200);
    }
  }
}

t.test('in a real API server', async (t) => {
  const kube = await startControlPlane(t);
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  const crds = kube.kubeConfig.makeApiClient(ApiextensionsV1Api);
  const objectsApi = KubernetesObjectApi.makeApiClient(kube.kubeConfig);
  const reviews = kube.kubeConfig.makeApiClient(AuthorizationV1Api);
  const cluster = await createHelm(t, { kubeconfigPath: kube.kubeconfigPath });
  for (const namespace of [NS, 'demo', 'other', 'edge-system']) await kube.createNamespace(namespace);
  await kube.createNamespace('apps');
  await core.patchNamespace({
    name: 'apps',
    body: [{ op: 'add', path: '/metadata/labels/outrigger.dev~1injection', value: 'enabled' }],
  });
  for (const name of ['orders', 'stranger']) {
    await core.createNamespacedServiceAccount({ namespace: 'demo', body: { metadata: { name } } });
  }
  const rbacValues = {
    sidecar: { rbac: { namespaces: [{ namespace: 'demo', serviceAccounts: ['default', 'orders'] }] } },
  };

  await t.test('helm install (default values): CRDs Established, every object stored', async (t) => {
    const install = await cluster.ok(['install', 'outrigger', CHART, '--namespace', NS]);
    t.match(install, /STATUS: deployed/);
    t.match(install, /outrigger\.dev\/inject: "true"/, 'NOTES show how to opt a Deployment in');

    const files = readdirSync(`${CHART}/crds`).filter((file) => /\.ya?ml$/.test(file));
    const shipped = files.flatMap((file) => parseObjects(readFileSync(`${CHART}/crds/${file}`, 'utf8')));
    const names = shipped.map((crd) => crd.metadata?.name).sort();
    t.same(names, ['outboundtargets.outrigger.dev', 'subscriptions.outrigger.dev'], 'the chart ships both CRDs');
    for (const name of names) {
      const crd = await until(`${name} Established`, async () => {
        const read = await crds.readCustomResourceDefinition({ name: name ?? '' });
        return established(read) ? read : undefined;
      });
      t.match(crd.spec, { group: 'outrigger.dev', scope: 'Namespaced' }, `${name}: outrigger.dev, namespaced`);
      t.ok(
        crd.spec.versions.some((v) => v.name === 'v1alpha1' && v.served && v.subresources?.status),
        `${name}: v1alpha1 with a status subresource`,
      );
    }

    const manifest = parseObjects(await cluster.ok(['get', 'manifest', 'outrigger', '--namespace', NS]));
    t.ok(manifest.length >= 8, `${manifest.length} objects in the release`);
    for (const object of manifest) {
      const stored = await objectsApi.read({
        apiVersion: object.apiVersion,
        kind: object.kind,
        metadata: { name: object.metadata?.name, namespace: object.metadata?.namespace },
      } as KubernetesObject & { metadata: { name: string } });
      t.equal(stored.metadata?.uid !== undefined, true, `stored: ${object.kind} ${object.metadata?.name}`);
    }
  });

  await t.test('failurePolicy Ignore: with the injector down, pods are still created', async (t) => {
    const pod = await core.createNamespacedPod({
      namespace: 'other',
      body: {
        metadata: { name: 'app', annotations: { 'outrigger.dev/inject': 'true' } },
        spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
      },
    });
    t.same(
      pod.spec?.containers.map((c) => c.name),
      ['app'],
      'created, without a sidecar (the webhook was called and failed)',
    );
  });

  await t.test('helm upgrade rotates the webhook certificate, keeping the previous CA trusted', async (t) => {
    const read = async () => {
      const secret = await core.readNamespacedSecret({ namespace: NS, name: 'outrigger-injector-tls' });
      const config = (await objectsApi.read({
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: 'outrigger-injector' },
      })) as V1MutatingWebhookConfiguration;
      const deployment = (await objectsApi.read({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'outrigger-injector', namespace: NS },
      })) as V1Deployment;
      return {
        ca: b64(secret.data?.['ca.crt']),
        cert: b64(secret.data?.['tls.crt']),
        key: b64(secret.data?.['tls.key']),
        bundle: b64(config.webhooks?.[0]?.clientConfig.caBundle),
        checksum: deployment.spec?.template.metadata?.annotations?.['checksum/tls'],
      };
    };
    const first = await read();
    t.equal(first.bundle, first.ca, 'after install: the caBundle is the Secret’s CA');

    await cluster.ok(['upgrade', 'outrigger', CHART, '--namespace', NS, ...(await cluster.values(rbacValues))]);
    const second = await read();
    t.not(second.ca, first.ca, 'a new CA');
    t.not(second.cert, first.cert, 'a new serving certificate');
    t.not(second.checksum, first.checksum, 'the injector pods roll');
    t.same(pems(second.bundle), [second.ca.trim(), first.ca.trim()], 'caBundle: the new CA, then the previous one');
    await trusted(t, second.cert, second.key, second.bundle, `outrigger-injector.${NS}.svc`);
    await trusted(t, first.cert, first.key, second.bundle, `outrigger-injector.${NS}.svc`);

    await cluster.ok(['upgrade', 'outrigger', CHART, '--namespace', NS, ...(await cluster.values(rbacValues))]);
    const third = await read();
    t.same(pems(third.bundle), [third.ca.trim(), second.ca.trim()], 'the CA before last is dropped');
  });

  const serviceAccount = (namespace: string, name: string) => ({
    user: `system:serviceaccount:${namespace}:${name}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  });
  type Attributes = { namespace?: string; group?: string; resource: string; subresource?: string; verb: string };
  const allowed = async (who: { user: string; groups: string[] }, attributes: Attributes) =>
    (await reviews.createSubjectAccessReview({ body: { spec: { ...who, resourceAttributes: attributes } } })).status
      ?.allowed === true;
  const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];
  /** Every verb on both kinds and their status, in its namespace, another one, and cluster-wide. */
  const grid = ['demo', 'other', ''].flatMap((namespace) =>
    ['subscriptions', 'outboundtargets'].flatMap((resource) =>
      ['', 'status'].flatMap((subresource) =>
        VERBS.map((verb) => ({ namespace, group: 'outrigger.dev', resource, subresource, verb })),
      ),
    ),
  );
  const granted = async (who: { user: string; groups: string[] }, attributes: Attributes[]) => {
    const answers = await Promise.all(attributes.map((a) => allowed(who, a)));
    const show = ({ namespace, resource, subresource, verb }: Attributes) =>
      `${verb} ${resource}${subresource ? `/${subresource}` : ''} in ${namespace || '(all namespaces)'}`;
    return attributes.filter((_, i) => answers[i]).map(show);
  };
  const NEEDED = [
    ...['get', 'list', 'watch'].flatMap((verb) =>
      ['subscriptions', 'outboundtargets'].map((resource) => `${verb} ${resource} in demo`),
    ),
    ...['get', 'update', 'patch'].flatMap((verb) =>
      ['subscriptions', 'outboundtargets'].map((resource) => `${verb} ${resource}/status in demo`),
    ),
  ].sort();

  await t.test('RBAC: the sidecar’s ServiceAccounts may do exactly what they need, in their namespace', async (t) => {
    // The RBAC authorizer reads through an informer: a new binding takes a moment to count.
    await until('the RoleBinding to take effect', () =>
      allowed(serviceAccount('demo', 'default'), {
        namespace: 'demo',
        group: 'outrigger.dev',
        resource: 'subscriptions',
        verb: 'list',
      }),
    );
    for (const name of ['default', 'orders']) {
      t.same(
        (await granted(serviceAccount('demo', name), grid)).sort(),
        NEEDED,
        `demo:${name}: exactly the needed grants`,
      );
    }
    t.same(await granted(serviceAccount('demo', 'stranger'), grid), [], 'a ServiceAccount not listed: nothing');
    t.same(await granted(serviceAccount('other', 'default'), grid), [], 'a namespace not listed: nothing');
    const elsewhere = [
      ...['get', 'list', 'watch'].map((verb) => ({ namespace: 'demo', resource: 'secrets', verb })),
      ...['get', 'list', 'create', 'delete'].map((verb) => ({ namespace: 'demo', resource: 'pods', verb })),
      { namespace: 'demo', resource: 'configmaps', verb: 'get' },
      { namespace: 'demo', resource: 'serviceaccounts', subresource: 'token', verb: 'create' },
      { namespace: 'demo', group: 'rbac.authorization.k8s.io', resource: 'rolebindings', verb: 'create' },
      { group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations', verb: 'list' },
      { group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions', verb: 'get' },
    ];
    t.same(
      await granted(serviceAccount('demo', 'default'), elsewhere),
      [],
      'no secrets, pods, RBAC or cluster objects',
    );

    // The same through real requests, with a token from the TokenRequest API, as a sidecar would make them.
    const objects = kube.kubeConfig.makeApiClient(CustomObjectsApi);
    const subscriptions = { group: 'outrigger.dev', version: 'v1alpha1', namespace: 'demo', plural: 'subscriptions' };
    await objects.createNamespacedCustomObject({
      ...subscriptions,
      body: {
        apiVersion: 'outrigger.dev/v1alpha1',
        kind: 'Subscription',
        metadata: { name: 'orders-created' },
        spec: { appId: 'orders', topic: 'orders.created' },
      },
    });
    const sidecar = (await kube.asServiceAccount('demo', 'orders')).kubeConfig.makeApiClient(CustomObjectsApi);
    const name = 'orders-created';
    t.equal(await statusOf(() => sidecar.listNamespacedCustomObject(subscriptions)), 200, 'lists its namespace’s');
    t.equal(await statusOf(() => sidecar.getNamespacedCustomObject({ ...subscriptions, name })), 200, 'gets one');
    t.equal(
      await statusOf(() => sidecar.listNamespacedCustomObject({ ...subscriptions, plural: 'outboundtargets' })),
      200,
      'lists OutboundTargets',
    );
    const condition = {
      type: 'Ready',
      status: 'True',
      reason: 'Applied',
      message: 'consuming',
      lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    };
    t.equal(
      await statusOf(() =>
        sidecar.patchNamespacedCustomObjectStatus({
          ...subscriptions,
          name,
          body: [{ op: 'add', path: '/status', value: { observedGeneration: 1, conditions: [condition] } }],
        }),
      ),
      200,
      'patches the status',
    );
    const stored = (await objects.getNamespacedCustomObject({ ...subscriptions, name })) as { status?: unknown };
    t.match(stored.status, { conditions: [{ type: 'Ready', status: 'True' }] }, 'the status is stored');
    const specPatch = [{ op: 'replace', path: '/spec/topic', value: 'other.topic' }];
    t.equal(
      await statusOf(() => sidecar.patchNamespacedCustomObject({ ...subscriptions, name, body: specPatch })),
      403,
      'may not change the spec',
    );
    t.equal(await statusOf(() => sidecar.deleteNamespacedCustomObject({ ...subscriptions, name })), 403, 'nor delete');
    t.equal(
      await statusOf(() => sidecar.listNamespacedCustomObject({ ...subscriptions, namespace: 'other' })),
      403,
      'nor read another namespace’s',
    );
    const secrets = (await kube.asServiceAccount('demo', 'orders')).kubeConfig.makeApiClient(CoreV1Api);
    t.equal(await statusOf(() => secrets.listNamespacedSecret({ namespace: 'demo' })), 403, 'nor read Secrets');
  });

  await t.test('RBAC: the injector’s ServiceAccount may do nothing', async (t) => {
    const injector = serviceAccount(NS, 'outrigger-injector');
    const everything = [
      ...grid,
      ...[NS, 'demo'].flatMap((namespace) =>
        ['pods', 'secrets', 'configmaps', 'serviceaccounts', 'services', 'events'].flatMap((resource) =>
          VERBS.map((verb) => ({ namespace, resource, verb })),
        ),
      ),
      ...VERBS.map((verb) => ({
        group: 'admissionregistration.k8s.io',
        resource: 'mutatingwebhookconfigurations',
        verb,
      })),
      { resource: 'namespaces', verb: 'list' },
      { resource: 'nodes', verb: 'list' },
    ];
    t.same(await granted(injector, everything), [], 'no grant at all');
    const sa = await core.readNamespacedServiceAccount({ namespace: NS, name: 'outrigger-injector' });
    t.equal(sa.automountServiceAccountToken, false, 'and no token mounted');
  });

  await t.test('non-default values: strict server-side dry-run of every object, then a real install', async (t) => {
    for (const crd of FIXTURE_CRDS) await crds.createCustomResourceDefinition({ body: crd });
    for (const crd of FIXTURE_CRDS) {
      const name = crd.metadata?.name ?? '';
      await until(`${name} Established`, async () => established(await crds.readCustomResourceDefinition({ name })));
    }
    const objects = await cluster.template(CHART, 'edge', 'edge-system', edgeValues);
    t.same(
      [...new Set(objects.map((o) => o.kind))].sort(),
      [
        'Certificate',
        'ClusterRole',
        'ConfigMap',
        'Deployment',
        'Issuer',
        'MutatingWebhookConfiguration',
        'NetworkPolicy',
        'RoleBinding',
        'Service',
        'ServiceAccount',
        'ServiceMonitor',
      ],
      'every kind the non-default values turn on',
    );
    for (const object of objects) {
      const result = await strictDryRun(kube, object);
      t.equal(
        result.status,
        201,
        `accepted: ${object.kind} ${object.metadata?.name} ${result.status === 201 ? '' : result.body}`,
      );
    }
    // The check is real: a misspelt field is refused.
    const deployment = structuredClone(one<V1Deployment>(objects, 'Deployment')) as V1Deployment & {
      spec: { replica?: number };
    };
    deployment.spec.replica = 2;
    const refused = await strictDryRun(kube, deployment);
    t.equal(refused.status, 400, 'a misspelt field is refused');
    t.match(JSON.parse(refused.body).message, /unknown field "spec\.replica"/, 'naming the field');

    const install = await cluster.ok([
      'install',
      'edge',
      CHART,
      '--namespace',
      'edge-system',
      ...(await cluster.values(edgeValues)),
    ]);
    t.match(install, /STATUS: deployed/);
    t.match(install, /failurePolicy: Fail/, 'NOTES state the failure policy');
    t.match(install, /demo: default\n\s+apps: orders, billing/, 'NOTES list the RBAC namespaces');
  });

  await t.test('failurePolicy Fail: pods in selected namespaces are refused while the injector is down', async (t) => {
    const pod = (name: string) => ({
      metadata: { name, annotations: { 'outrigger.dev/inject': 'true' } },
      spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
    });
    const error = await core.createNamespacedPod({ namespace: 'apps', body: pod('app') }).catch((e: unknown) => e);
    t.ok(error instanceof ApiException && error.code >= 500, 'refused: the namespace asked for injection');
    t.match(String((error as ApiException<string>).body), /inject\.outrigger\.dev/, 'the API server names the webhook');
    t.equal(
      await statusOf(() => core.createNamespacedPod({ namespace: 'demo', body: pod('app') })),
      200,
      'a namespace outside the selector is not affected',
    );
  });

  await t.test('helm uninstall removes the release and keeps the CRDs (and so the users’ resources)', async (t) => {
    await cluster.ok(['uninstall', 'edge', '--namespace', 'edge-system']);
    const rbac = kube.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    t.equal(await statusOf(() => rbac.readClusterRole({ name: 'edge-outrigger-sidecar' })), 404, 'ClusterRole gone');
    t.equal(
      await statusOf(() => rbac.readNamespacedRoleBinding({ namespace: 'apps', name: 'edge-outrigger-sidecar' })),
      404,
      'RoleBindings gone',
    );
    await cluster.ok(['uninstall', 'outrigger', '--namespace', NS]);
    const left = await crds.readCustomResourceDefinition({ name: 'subscriptions.outrigger.dev' });
    t.ok(established(left), 'the CRDs stay');
  });
});
