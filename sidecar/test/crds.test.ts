// The Subscription and OutboundTarget CRDs, as the chart ships them, on the
// real API server: accepted, served, validating what can be validated
// before the sidecar sees a resource, and selectable by app id.
import { ApiException, CustomObjectsApi } from '@kubernetes/client-node';
import t from 'tap';
import { asAdmin } from './support/admin-request.ts';
import { installCrds } from './support/crds.ts';
import { startControlPlane } from './support/kube.ts';

const kube = await startControlPlane(t);
await installCrds(kube.kubeConfig);
await kube.createNamespace('shop');
const objects = kube.kubeConfig.makeApiClient(CustomObjectsApi);

const where = (plural: string) => ({ group: 'outrigger.dev', version: 'v1alpha1', namespace: 'shop', plural });
const subscription = (name: string, spec: Record<string, unknown>) => ({
  ...where('subscriptions'),
  body: { apiVersion: 'outrigger.dev/v1alpha1', kind: 'Subscription', metadata: { name }, spec },
});
const target = (name: string, spec: Record<string, unknown>) => ({
  ...where('outboundtargets'),
  body: { apiVersion: 'outrigger.dev/v1alpha1', kind: 'OutboundTarget', metadata: { name }, spec },
});

async function refusal(call: Promise<unknown>): Promise<string> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof ApiException)) return 'accepted';
  return `${error.code} ${String(error.body)}`;
}

t.test('valid resources are stored as written, without defaults filled in', async (t) => {
  const spec = {
    appId: 'orders',
    topic: 'orders.created',
    route: '/events/orders',
    retry: { maxAttempts: 5, initial: '2s' },
    queueType: 'quorum',
  };
  await objects.createNamespacedCustomObject(subscription('orders-created', spec));
  const read = (await objects.getNamespacedCustomObject({ ...where('subscriptions'), name: 'orders-created' })) as {
    spec: unknown;
  };
  t.same(read.spec, spec, 'the sidecar, not the API server, applies defaults (those of its own version)');

  const targetSpec = {
    appId: 'orders',
    baseUrl: 'https://payments.example.com/v2',
    retry: { jitter: 'full', on: [503, 'reset'] },
    headers: { authorization: { secretEnv: 'PAYMENTS_TOKEN' }, 'x-client': { value: 'orders' } },
  };
  await objects.createNamespacedCustomObject(target('payments', targetSpec));
  const stored = (await objects.getNamespacedCustomObject({ ...where('outboundtargets'), name: 'payments' })) as {
    spec: unknown;
  };

  t.same(stored.spec, targetSpec, 'int-or-string lists, "full"-or-number and header sources survive the schema');
});

t.test('the schema refuses what it can express, naming the field', async (t) => {
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    [
      'no appId',
      () => objects.createNamespacedCustomObject(subscription('a', { topic: 'x', route: '/x' })),
      /spec\.appId/,
    ],
    [
      'appId not a DNS label',
      () => objects.createNamespacedCustomObject(subscription('b', { appId: 'Orders_1', topic: 'x', route: '/x' })),
      /spec\.appId/,
    ],
    [
      'topic with a space',
      () => objects.createNamespacedCustomObject(subscription('c', { appId: 'orders', topic: 'a b', route: '/x' })),
      /spec\.topic/,
    ],
    [
      'unknown mode',
      () => objects.createNamespacedCustomObject(subscription('d', { appId: 'orders', topic: 'x', mode: 'poll' })),
      /spec\.mode/,
    ],
    [
      'zero concurrency',
      () =>
        objects.createNamespacedCustomObject(
          subscription('e', { appId: 'orders', topic: 'x', route: '/x', concurrency: 0 }),
        ),
      /spec\.concurrency/,
    ],
    [
      'a duration that is not one',
      () =>
        objects.createNamespacedCustomObject(
          subscription('f', { appId: 'orders', topic: 'x', route: '/x', timeout: '5 minutes' }),
        ),
      /spec\.timeout/,
    ],
    [
      'a name longer than queue names allow',
      () =>
        objects.createNamespacedCustomObject(
          subscription('n'.repeat(101), { appId: 'orders', topic: 'x', route: '/x' }),
        ),
      /at most 100 characters/,
    ],
    [
      'a target without a base URL',
      () => objects.createNamespacedCustomObject(target('t1', { appId: 'orders' })),
      /spec\.baseUrl/,
    ],
    [
      'an empty header source',
      () =>
        objects.createNamespacedCustomObject(
          target('t2', { appId: 'orders', baseUrl: 'https://x.example', headers: { a: {} } }),
        ),
      /spec\.headers/,
    ],
  ];
  for (const [what, call, field] of cases) {
    const answer = await refusal(call());
    t.match(answer, /^422 /, `${what}: 422 Invalid`);
    t.match(answer, field, `${what}: names the field`);
  }
});

t.test('appId is immutable: moving a resource between apps is a delete and a create', async (t) => {
  await objects.createNamespacedCustomObject(subscription('moving', { appId: 'orders', topic: 'm', route: '/m' }));
  const answer = await refusal(
    objects.patchNamespacedCustomObject({
      ...where('subscriptions'),
      name: 'moving',
      body: [{ op: 'replace', path: '/spec/appId', value: 'billing' }],
    }),
  );
  t.match(answer, /^422 .*appId is immutable/s);
});

t.test('sidecars select their own resources with a field selector on spec.appId', async (t) => {
  await objects.createNamespacedCustomObject(subscription('billing-in', { appId: 'billing', topic: 'b', route: '/b' }));
  const list = (await objects.listNamespacedCustomObject({
    ...where('subscriptions'),
    fieldSelector: 'spec.appId=billing',
  })) as { items: { metadata: { name: string } }[] };
  t.same(
    list.items.map((item) => item.metadata.name),
    ['billing-in'],
  );
});

t.test('kubectl get shows app, topic and readiness columns', async (t) => {
  const answer = await asAdmin(kube, 'GET', '/apis/outrigger.dev/v1alpha1/namespaces/shop/subscriptions', undefined, {
    accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
  });
  const table = JSON.parse(answer.body) as { columnDefinitions: { name: string }[] };
  t.same(
    table.columnDefinitions.map((column) => column.name),
    ['Name', 'App', 'Topic', 'Mode', 'Route', 'Ready', 'Reason', 'Age'],
  );
});
