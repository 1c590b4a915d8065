// charts/outrigger in a real kube-apiserver (support/kube.ts): every object,
// CRDs included, passes a strict server-side dry-run and is stored by helm
// install; helm upgrade rotates the webhook certificate; the sidecar's
// ServiceAccounts may do exactly what they need in their namespace and the
// injector's nothing; failurePolicy Ignore and Fail behave as documented.

import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AdmissionregistrationV1Api,
  ApiException,
  ApiextensionsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubernetesObject,
  KubernetesObjectApi,
  RbacAuthorizationV1Api,
  type V1CustomResourceDefinition,
  type V1Deployment,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import t from 'tap';
import { createHelm, one, parseObjects } from './support/helm.ts';
import { startControlPlane } from './support/kube.ts';
import { b64, CHART, edgeValues, NS, pems, trusted } from './support/outrigger-chart.ts';
import { strictDryRun } from './support/strict-dry-run.ts';
import { until } from './support/wait.ts';

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

const crdFiles = readdirSync(`${CHART}/crds`).filter((file) => /\.ya?ml$/.test(file));
const shippedCrds = crdFiles.flatMap((file) => parseObjects(readFileSync(`${CHART}/crds/${file}`, 'utf8')));
const CRD_NAMES = ['outboundtargets.outrigger.dev', 'subscriptions.outrigger.dev'];

t.test('default values: every object, CRDs included, passes a strict server-side dry-run', async (t) => {
  t.same(shippedCrds.map((crd) => crd.metadata?.name).sort(), CRD_NAMES, 'the chart ships both CRDs');
  for (const object of [...shippedCrds, ...(await cluster.template(CHART, 'outrigger', NS))]) {
    const result = await strictDryRun(kube, object);
    t.equal(
      result.status,
      201,
      `accepted: ${object.kind} ${object.metadata?.name} ${result.status === 201 ? '' : result.body}`,
    );
  }
});

t.test('helm install (default values): CRDs Established, every object stored', async (t) => {
  const install = await cluster.ok(['install', 'outrigger', CHART, '--namespace', NS]);
  t.match(install, /STATUS: deployed/);
  t.match(install, /outrigger\.dev\/inject: "true"/, 'NOTES show how to opt a Deployment in');
  for (const name of CRD_NAMES) {
    const crd = await until(`${name} Established`, async () => {
      const read = await crds.readCustomResourceDefinition({ name });
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

t.test('failurePolicy Ignore: with the injector down, pods are still created', async (t) => {
  const body = (name: string) => ({
    metadata: { name, annotations: { 'outrigger.dev/inject': 'true' } },
    spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
  });
  const pod = await core.createNamespacedPod({ namespace: 'other', body: body('app') });
  t.same(
    pod.spec?.containers.map((c) => c.name),
    ['app'],
    'created, without a sidecar',
  );
  t.same(pod.spec?.initContainers ?? [], [], 'nothing injected');

  // A pod without a sidecar is also what a webhook that never matched gives. That it was called (and
  // failed): the same configuration with failurePolicy Fail refuses the same pod (another name, dry-run),
  // naming the webhook; back to Ignore, it is accepted again.
  const admission = kube.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  const policy = (from: string, to: string) =>
    admission.patchMutatingWebhookConfiguration({
      name: 'outrigger-injector',
      body: [
        { op: 'test', path: '/webhooks/0/failurePolicy', value: from },
        { op: 'replace', path: '/webhooks/0/failurePolicy', value: to },
      ],
    });
  const dryRun = () => core.createNamespacedPod({ namespace: 'other', body: body('app-again'), dryRun: 'All' });
  await policy('Ignore', 'Fail');
  try {
    const error = await dryRun().catch((e: unknown) => e);
    const code = error instanceof ApiException ? error.code : undefined;
    t.ok(code !== undefined && code >= 500, `with Fail, refused (HTTP ${code ?? String(error)})`);
    t.match(
      (JSON.parse(String((error as ApiException<string>).body)) as { message?: string }).message,
      /failed calling webhook "inject\.outrigger\.dev"/,
      'the API server called the webhook, and the call failed',
    );
  } finally {
    await policy('Fail', 'Ignore');
  }
  t.equal(await statusOf(dryRun), 200, 'with Ignore again, accepted');
});

t.test('helm upgrade rotates the webhook certificate, keeping the previous CA trusted', async (t) => {
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
  ...['subscriptions', 'outboundtargets'].map((resource) => `patch ${resource}/status in demo`),
].sort();

t.test('RBAC: the sidecar’s ServiceAccounts may do exactly what they need, in their namespace', async (t) => {
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
  t.same(await granted(serviceAccount('demo', 'default'), elsewhere), [], 'no secrets, pods, RBAC or cluster objects');

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

t.test('RBAC: the injector’s ServiceAccount may do nothing', async (t) => {
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

t.test('non-default values: strict server-side dry-run of every object, then a real install', async (t) => {
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

t.test('failurePolicy Fail: pods in selected namespaces are refused while the injector is down', async (t) => {
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

t.test('helm uninstall removes the release and keeps the CRDs (and so the users’ resources)', async (t) => {
  const users = kube.kubeConfig.makeApiClient(CustomObjectsApi);
  const subscription = {
    group: 'outrigger.dev',
    version: 'v1alpha1',
    namespace: 'demo',
    plural: 'subscriptions',
    name: 'orders-created',
  };
  const before = (await users.getNamespacedCustomObject(subscription)) as KubernetesObject & { spec?: unknown };
  await cluster.ok(['uninstall', 'edge', '--namespace', 'edge-system']);
  const rbac = kube.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  t.equal(await statusOf(() => rbac.readClusterRole({ name: 'edge-outrigger-sidecar' })), 404, 'ClusterRole gone');
  t.equal(
    await statusOf(() => rbac.readNamespacedRoleBinding({ namespace: 'apps', name: 'edge-outrigger-sidecar' })),
    404,
    'RoleBindings gone',
  );
  await cluster.ok(['uninstall', 'outrigger', '--namespace', NS]);
  for (const name of CRD_NAMES) {
    t.ok(established(await crds.readCustomResourceDefinition({ name })), `${name} stays`);
  }
  const after = (await users.getNamespacedCustomObject(subscription)) as KubernetesObject & { spec?: unknown };
  t.equal(after.metadata?.uid, before.metadata?.uid, 'the Subscription the RBAC test created is still there');
  t.same(after.spec, { appId: 'orders', topic: 'orders.created' }, 'unchanged');
});
