// Hot reload from Kubernetes, end to end: a real sidecar process watching a
// real API server (kube-apiserver on kine) with the ServiceAccount token and
// the RBAC that charts/outrigger grants, against the real RabbitMQ. Resources
// applied, changed and deleted take effect without a restart; each gets a
// Ready condition saying whether it was applied, and why not.
import { CustomObjectsApi, KubernetesObjectApi } from '@kubernetes/client-node';
import t from 'tap';
import type { ReadinessReport } from '../src/health/readiness.ts';
import { KUBERNETES_CHECK } from '../src/k8s/cluster.ts';
import { startApp } from './support/app-server.ts';
import { installCrds } from './support/crds.ts';
import { CHARTS, createHelm } from './support/helm.ts';
import { deleteQueuesAtEnd, uniqueTopic } from './support/in-process.ts';
import { startControlPlane } from './support/kube.ts';
import { messageCount, publish, queueCounts, uniqueAppId } from './support/push.ts';
import { startSidecar } from './support/sidecar-process.ts';
import { apiClient, startUpstream } from './support/upstream.ts';
import { until } from './support/wait.ts';

const NAMESPACE = 'shop';
const kube = await startControlPlane(t);
await installCrds(kube.kubeConfig);
await kube.createNamespace(NAMESPACE);
await kube.createNamespace('elsewhere');

// The sidecar's permissions exactly as the chart renders them for this namespace.
const helm = await createHelm(t);
const rbac = await helm.template(`${CHARTS}outrigger`, 'outrigger', 'outrigger-system', {
  sidecar: { rbac: { namespaces: [{ namespace: NAMESPACE }] } },
});
const objects = KubernetesObjectApi.makeApiClient(kube.kubeConfig);
for (const object of rbac.filter((o) => o.kind === 'ClusterRole' || o.kind === 'RoleBinding')) {
  await objects.create(object);
}
const serviceAccount = await kube.asServiceAccount(NAMESPACE, 'default');

const custom = kube.kubeConfig.makeApiClient(CustomObjectsApi);
const api = { group: 'outrigger.dev', version: 'v1alpha1', namespace: NAMESPACE };
type Condition = { type: string; status: string; reason: string; message: string; observedGeneration?: number };
type Resource = { metadata: { generation: number }; status?: { conditions?: Condition[] } };

const appId = uniqueAppId('hot');
const app = await startApp(t);
const upstream = await startUpstream(t);
const sidecar = await startSidecar(
  t,
  { appId, app: { port: app.port } },
  { KUBECONFIG: serviceAccount.kubeconfigPath, OUTRIGGER_KUBERNETES: 'true', OUTRIGGER_NAMESPACE: NAMESPACE },
);
const call = apiClient(t, sidecar.api);

async function metadata() {
  return (await call('/v1/metadata')).json() as {
    subscriptions: { name: string; state: string; topic: string }[];
    targets: { name: string; baseUrl: string }[];
  };
}
const subscriptionState = async (name: string) =>
  (await metadata()).subscriptions.find((sub) => sub.name === name)?.state;

async function readyCondition(plural: string, name: string) {
  const read = (await custom.getNamespacedCustomObject({ ...api, plural, name })) as Resource;
  const ready = read.status?.conditions?.find((c) => c.type === 'Ready');
  return ready === undefined ? undefined : { ...ready, generation: read.metadata.generation };
}

/** How many consumers the broker has on `queue`: a replaced subscription's old consumer must be gone. */
const PLURAL = { Subscription: 'subscriptions', OutboundTarget: 'outboundtargets' } as const;

/** Creates a resource of `kind` named `name` (in this test's namespace unless told). */
function create(kind: keyof typeof PLURAL, name: string, spec: Record<string, unknown>, namespace = NAMESPACE) {
  return custom.createNamespacedCustomObject({
    ...api,
    namespace,
    plural: PLURAL[kind],
    body: { apiVersion: 'outrigger.dev/v1alpha1', kind, metadata: { name }, spec },
  });
}

const topic = uniqueTopic('hot');
const queue = `${appId}:${topic}`;
deleteQueuesAtEnd(t, queue, `${queue}:dlq`);
deleteQueuesAtEnd(
  t,
  `${appId}:${topic}.warm-up`,
  `${appId}:${topic}.warm-up:dlq`,
  `${appId}:${topic}.other`,
  `${appId}:${topic}.other:dlq`,
);

t.test('ready once the resources have been listed; readiness shows the watches', async (t) => {
  const readyz = await until('readyz 200', async () => {
    const response = await fetch(`${sidecar.ops}/readyz`);
    return response.status === 200 ? (response.json() as Promise<ReadinessReport>) : undefined;
  });
  t.ok(readyz.checks[KUBERNETES_CHECK], 'readiness includes the watch');
  // A CRD created a moment ago is served from a watch cache that is still filling: its first events
  // come late (429s, then a pause of about 2 s here). In a cluster the CRDs are long installed; so
  // before timing anything, one round trip through a resource that is then deleted.
  await create('Subscription', 'warm-up', { appId, topic: `${topic}.warm-up`, mode: 'pull' });
  await until('the warm-up subscription', async () => (await subscriptionState('warm-up')) === 'consuming', {
    timeoutMs: 30_000,
  });
  await custom.deleteNamespacedCustomObject({ ...api, plural: 'subscriptions', name: 'warm-up' });
  await until('the warm-up subscription to go', async () => (await subscriptionState('warm-up')) === undefined);
});

t.test('a new Subscription consumes within 2 s, and its status says Applied', async (t) => {
  const started = Date.now();
  await create('Subscription', 'orders', { appId, topic, route: '/events/orders', concurrency: 2 });
  await until('the subscription to consume', async () => (await subscriptionState('orders')) === 'consuming', {
    timeoutMs: 2_000,
  });
  t.comment(`consuming ${Date.now() - started} ms after the Subscription was created`);
  const { id } = await publish(sidecar.api, topic, '{"order":1}', { 'content-type': 'application/json' });
  const pushed = await until('the push', () => app.received.find((r) => r.headers['ce-id'] === id));
  t.equal(pushed.path, '/events/orders');
  const ready = await until('a Ready condition', () => readyCondition('subscriptions', 'orders'));
  t.match(ready, { status: 'True', reason: 'Applied', observedGeneration: ready.generation });
});

t.test('a changed Subscription applies to the next message', async (t) => {
  await custom.patchNamespacedCustomObject({
    ...api,
    plural: 'subscriptions',
    name: 'orders',
    body: [{ op: 'replace', path: '/spec/route', value: '/events/orders-v2' }],
  });
  const { id } = await until(
    'a push to the new route',
    async () => {
      const sent = await publish(sidecar.api, topic, '{"order":2}');
      const pushed = await until('the push', () => app.received.find((r) => r.headers['ce-id'] === sent.id));
      return pushed.path === '/events/orders-v2' ? sent : undefined;
    },
    { timeoutMs: 5_000, intervalMs: 50 },
  );
  t.ok(id, 'pushed to /events/orders-v2');
  // Replaced, not added beside the old one: one consumer on the queue, and every later message takes the new route.
  await until('the old consumer to be cancelled', async () => (await queueCounts(queue)).consumerCount === 1);
  t.equal((await queueCounts(queue)).consumerCount, 1, 'one consumer on the queue');
  t.same(
    (await metadata()).subscriptions.filter((sub) => sub.name === 'orders').map((sub) => sub.state),
    ['consuming'],
    'one subscription named orders',
  );
  for (let order = 10; order < 14; order++) {
    const sent = await publish(sidecar.api, topic, `{"order":${order}}`);
    const pushed = await until('the push', () => app.received.find((r) => r.headers['ce-id'] === sent.id));
    t.equal(pushed.path, '/events/orders-v2', `message ${order} goes to the new route`);
  }
  const ready = await until('the condition for generation 2', async () => {
    const condition = await readyCondition('subscriptions', 'orders');
    return condition?.observedGeneration === 2 ? condition : undefined;
  });
  t.match(ready, { status: 'True', reason: 'Applied' });
});

t.test('an invalid spec the CRD schema cannot catch is reported in status and not applied', async (t) => {
  await create('Subscription', 'no-route', { appId, topic: `${topic}.other`, mode: 'push' });
  const ready = await until('a Ready condition', () => readyCondition('subscriptions', 'no-route'));
  t.match(ready, { status: 'False', reason: 'InvalidSpec', message: /spec\.route: required when mode is push/ });
  t.equal(await subscriptionState('no-route'), undefined, 'not running');
  t.equal(await subscriptionState('orders'), 'consuming', 'the others run on');
});

t.test("another app's resources and other namespaces are not this sidecar's", async (t) => {
  for (const [namespace, owner] of [
    [NAMESPACE, 'someone-else'],
    ['elsewhere', appId],
  ] as const) {
    await create(
      'Subscription',
      `foreign-${namespace}`,
      { appId: owner, topic: `${topic}.foreign`, route: '/x' },
      namespace,
    );
  }
  // A later change this sidecar does see proves the earlier ones had their chance to arrive.
  await custom.patchNamespacedCustomObject({
    ...api,
    plural: 'subscriptions',
    name: 'no-route',
    body: [{ op: 'add', path: '/spec/route', value: '/events/late' }],
  });
  await until('the fixed subscription to consume', async () => (await subscriptionState('no-route')) === 'consuming');
  const names = (await metadata()).subscriptions.map((sub) => sub.name).sort();
  t.same(names, ['no-route', 'orders']);
  // The fixed spec is the one at work: its route gets the pushes, and its status moves to Applied.
  const { id } = await publish(sidecar.api, `${topic}.other`, '{"late":true}');
  const pushed = await until('the push', () => app.received.find((r) => r.headers['ce-id'] === id));
  t.equal(pushed.path, '/events/late', 'pushed to the route the change added');
  const ready = await until('the condition for generation 2', async () => {
    const condition = await readyCondition('subscriptions', 'no-route');
    return condition?.observedGeneration === 2 ? condition : undefined;
  });
  t.match(ready, { status: 'True', reason: 'Applied' });
});

t.test('a deleted Subscription stops consuming; its queue keeps what arrives', async (t) => {
  await custom.deleteNamespacedCustomObject({ ...api, plural: 'subscriptions', name: 'orders' });
  await until('the subscription to be gone', async () => (await subscriptionState('orders')) === undefined);
  const pushes = () => app.received.filter((r) => r.path.startsWith('/events/orders')).length;
  const before = pushes();
  await publish(sidecar.api, topic, '{"order":3}');
  await until('the message to wait in the queue', async () => (await messageCount(queue)) === 1);
  t.equal(pushes(), before, 'nothing pushed after the delete');
});

t.test('OutboundTargets: added, changed and deleted, each applied to the next call', async (t) => {
  const spec = (baseUrl: string, timeout: string) => ({
    appId,
    baseUrl,
    timeout,
    headers: { 'x-client': { value: 'hot-reload' } },
  });
  t.equal((await call('/v1/outbound/payments/charge')).status, 404, 'unknown before');
  await create('OutboundTarget', 'payments', spec(`http://127.0.0.1:${upstream.port}/v1`, '5s'));
  const first = await until('the target to answer', async () => {
    const answer = await call('/v1/outbound/payments/charge');
    return answer.status === 200 ? answer : undefined;
  });
  t.equal(first.status, 200);
  t.match(upstream.hits.at(-1), { url: '/v1/charge', headers: { 'x-client': 'hot-reload' } });
  const listed = async () => (await metadata()).targets.filter((target) => target.name === 'payments');
  t.same(
    (await listed()).map(({ baseUrl }) => baseUrl),
    [`http://127.0.0.1:${upstream.port}/v1`],
  );

  await custom.patchNamespacedCustomObject({
    ...api,
    plural: 'outboundtargets',
    name: 'payments',
    body: [{ op: 'replace', path: '/spec/baseUrl', value: `http://127.0.0.1:${upstream.port}/v2` }],
  });
  await until('calls to go to the new base path', async () => {
    await call('/v1/outbound/payments/charge');
    return upstream.hits.at(-1)?.url === '/v2/charge';
  });
  t.pass('the next call follows the changed spec');
  t.match(upstream.hits.at(-1), { headers: { 'x-client': 'hot-reload' } }, 'with the headers of the spec');
  t.same(
    (await listed()).map(({ baseUrl }) => baseUrl),
    [`http://127.0.0.1:${upstream.port}/v2`],
    'one target named payments, with the new baseUrl',
  );
  const ready = await until('the condition for generation 2', async () => {
    const condition = await readyCondition('outboundtargets', 'payments');
    return condition?.observedGeneration === 2 ? condition : undefined;
  });
  t.match(ready, { status: 'True', reason: 'Applied' });

  await custom.deleteNamespacedCustomObject({ ...api, plural: 'outboundtargets', name: 'payments' });
  const gone = await until('the target to be gone', async () => {
    const answer = await call('/v1/outbound/payments/charge');
    return answer.status === 404 ? answer : undefined;
  });
  t.match(gone.json(), { code: 'TARGET_UNKNOWN' });
  t.same(await listed(), [], 'no longer listed');
});

t.test('a target whose secret this sidecar lacks is reported, not applied', async (t) => {
  await create('OutboundTarget', 'ledger', {
    appId,
    baseUrl: 'https://ledger.example',
    headers: { authorization: { secretEnv: 'LEDGER_TOKEN' } },
  });
  const ready = await until('a Ready condition', () => readyCondition('outboundtargets', 'ledger'));
  t.match(ready, {
    status: 'False',
    reason: 'SecretUnavailable',
    message: /spec\.headers\.authorization\.secretEnv: the environment variable LEDGER_TOKEN is not set/,
  });
  t.notOk((await metadata()).targets.some((target) => target.name === 'ledger'));
});

t.test('a sidecar whose namespace the chart did not grant still becomes ready, with no resources', async (t) => {
  const outsider = await kube.asServiceAccount('elsewhere', 'default');
  const other = await startSidecar(
    t,
    { appId: uniqueAppId('outsider') },
    { KUBECONFIG: outsider.kubeconfigPath, OUTRIGGER_KUBERNETES: 'true', OUTRIGGER_NAMESPACE: 'elsewhere' },
  );
  const readyz = await until('readyz 200', async () => {
    const response = await fetch(`${other.ops}/readyz`);
    return response.status === 200 ? response.text() : undefined;
  });
  t.match(readyz, /Subscription: none \(403 /, 'readiness says why it sees no resources');
  await other.stop('SIGTERM');
});

t.test('SIGTERM stops the watch with the rest', async (t) => {
  const exit = await sidecar.stop('SIGTERM');
  t.equal(exit.code, 0);
});
