// The control-plane harness (support/kube.ts) against what later tests rely
// on: a ready API server, CRDs that become Established without a
// controller-manager, schema validation, RBAC as a ServiceAccount and as a
// certificate user, and pods accepted through admission.

import { readFileSync } from 'node:fs';
import {
  ApiException,
  ApiextensionsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  type V1CustomResourceDefinition,
  VersionApi,
} from '@kubernetes/client-node';
import t from 'tap';
import { startControlPlane } from './support/kube.ts';
import { until } from './support/wait.ts';

const kube = await startControlPlane(t);
const core = kube.kubeConfig.makeApiClient(CoreV1Api);

/** The HTTP status a call ends with: 200 when it succeeds, else the API's error code. */
async function statusOf(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    return 200;
  } catch (error) {
    if (error instanceof ApiException) return error.code;
    throw error;
  }
}

t.test('the API server is ready and reports the pinned version', async (t) => {
  const response = await fetch(`${kube.server}/version`).catch((error: Error) => error);
  t.ok(response instanceof Error, 'plain fetch does not trust the test CA: TLS is really on');
  const versions = readFileSync(new URL('../../scripts/versions.env', import.meta.url), 'utf8');
  const pinned = /^KUBERNETES_VERSION=(\S+)/m.exec(versions)?.[1];
  const version = await kube.kubeConfig.makeApiClient(VersionApi).getCode();
  t.equal(version.gitVersion, pinned, 'kube-apiserver is the pinned version (if not: make kube-tools)');
  const namespaces = await core.listNamespace();
  t.ok(
    namespaces.items.some((ns) => ns.metadata?.name === 'default'),
    'the default namespace exists',
  );
  await kube.createNamespace('harness');
  const read = await core.readNamespace({ name: 'harness' });
  t.equal(read.status?.phase, 'Active');
});

const widgets: V1CustomResourceDefinition = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.test.outrigger.dev' },
  spec: {
    group: 'test.outrigger.dev',
    scope: 'Namespaced',
    names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                required: ['size'],
                properties: { size: { type: 'integer', minimum: 1, maximum: 10 }, colour: { type: 'string' } },
              },
            },
          },
        },
      },
    ],
  },
};

t.test('a CRD becomes Established and its schema is enforced', async (t) => {
  const crds = kube.kubeConfig.makeApiClient(ApiextensionsV1Api);
  await crds.createCustomResourceDefinition({ body: widgets });
  // apiextensions-apiserver's own controllers (inside kube-apiserver) set these; no controller-manager.
  const crd = await until(
    'the CRD to be Established',
    async () => {
      const read = await crds.readCustomResourceDefinition({ name: 'widgets.test.outrigger.dev' });
      const established = read.status?.conditions?.find((c) => c.type === 'Established')?.status === 'True';
      return established ? read : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  t.equal(crd.status?.conditions?.find((c) => c.type === 'NamesAccepted')?.status, 'True');

  await kube.createNamespace('crds');
  const objects = kube.kubeConfig.makeApiClient(CustomObjectsApi);
  const target = { group: 'test.outrigger.dev', version: 'v1', namespace: 'crds', plural: 'widgets' };
  const widget = (name: string, spec: Record<string, unknown>) => ({
    ...target,
    body: { apiVersion: 'test.outrigger.dev/v1', kind: 'Widget', metadata: { name }, spec },
  });
  await objects.createNamespacedCustomObject(widget('small', { size: 2, colour: 'teal' }));
  const read = (await objects.getNamespacedCustomObject({ ...target, name: 'small' })) as { spec: unknown };
  t.same(read.spec, { size: 2, colour: 'teal' });

  for (const [name, spec] of [
    ['too-big', { size: 11 }],
    ['wrong-type', { size: 'big' }],
    ['missing', { colour: 'red' }],
  ] as const) {
    const error = await objects.createNamespacedCustomObject(widget(name, spec)).catch((e: unknown) => e);
    t.ok(error instanceof ApiException && error.code === 422, `${name}: 422 Invalid`);
    t.match(String((error as ApiException<string>).body), /spec\.size/, `${name}: names the field`);
  }
});

t.test('RBAC: a ServiceAccount can do what its Role allows and nothing else', async (t) => {
  await kube.createNamespace('rbac');
  await core.createNamespacedServiceAccount({ namespace: 'rbac', body: { metadata: { name: 'reader' } } });
  const rbac = kube.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({
    namespace: 'rbac',
    body: {
      metadata: { name: 'pod-reader' },
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: 'rbac',
    body: {
      metadata: { name: 'reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
      subjects: [
        { kind: 'ServiceAccount', name: 'reader', namespace: 'rbac' },
        { kind: 'Group', name: 'outrigger:readers', apiGroup: 'rbac.authorization.k8s.io' },
      ],
    },
  });

  const reviews = kube.kubeConfig.makeApiClient(AuthorizationV1Api);
  const allowed = async (verb: string) =>
    (
      await reviews.createSubjectAccessReview({
        body: {
          spec: {
            user: 'system:serviceaccount:rbac:reader',
            resourceAttributes: { namespace: 'rbac', resource: 'pods', verb },
          },
        },
      })
    ).status?.allowed === true;
  // The RBAC authorizer reads through an informer: a new binding takes a moment to count.
  await until('the RoleBinding to take effect', () => allowed('list'), { timeoutMs: 10_000, intervalMs: 100 });
  t.notOk(await allowed('delete'), 'SubjectAccessReview: delete is not allowed');

  const sa = (await kube.asServiceAccount('rbac', 'reader')).kubeConfig.makeApiClient(CoreV1Api);
  t.equal(await statusOf(() => sa.listNamespacedPod({ namespace: 'rbac' })), 200, 'SA lists pods');
  t.equal(await statusOf(() => sa.listNamespacedPod({ namespace: 'default' })), 403, 'not in another namespace');
  t.equal(await statusOf(() => sa.listNamespacedSecret({ namespace: 'rbac' })), 403, 'not secrets');
  t.equal(
    await statusOf(() => sa.deleteNamespacedPod({ namespace: 'rbac', name: 'anything' })),
    403,
    'not delete (403 before 404)',
  );

  const member = (await kube.asUser('alice', ['outrigger:readers'])).kubeConfig.makeApiClient(CoreV1Api);
  const stranger = (await kube.asUser('bob', ['outrigger:others'])).kubeConfig.makeApiClient(CoreV1Api);
  t.equal(await statusOf(() => member.listNamespacedPod({ namespace: 'rbac' })), 200, 'group member by certificate');
  t.equal(await statusOf(() => stranger.listNamespacedPod({ namespace: 'rbac' })), 403, 'certificate user outside');
});

t.test('a pod is admitted and stays Pending (no scheduler)', async (t) => {
  await kube.createNamespace('pods');
  await core.createNamespacedPod({
    namespace: 'pods',
    body: {
      metadata: { name: 'app', labels: { app: 'demo' } },
      spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
    },
  });
  const pod = await core.readNamespacedPod({ namespace: 'pods', name: 'app' });
  t.equal(pod.status?.phase, 'Pending');
  t.notOk(pod.spec?.nodeName, 'not scheduled');
  // Admission ran: the ServiceAccount plugin set the account and mounted its token.
  t.equal(pod.spec?.serviceAccountName, 'default');
  t.ok(
    pod.spec?.volumes?.some((volume) => volume.name.startsWith('kube-api-access-')),
    'token volume projected',
  );
});
