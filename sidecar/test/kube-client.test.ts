// The sidecar's own Kubernetes API client (src/k8s/api/) and the watch built
// on it (src/k8s/resource-watch.ts), against a real kube-apiserver on kine:
// connection from a pod's ServiceAccount files and from kubeconfigs, list by
// field selector, watch events, a watch the server ends and one it can no
// longer serve (410), status patches, and RBAC's refusals. The resources are
// set up with @kubernetes/client-node, which tests keep using.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AdmissionregistrationV1Api, CustomObjectsApi, KubernetesObjectApi } from '@kubernetes/client-node';
import t from 'tap';
import { customResourcePath, KubeClient, type Query, type WatchEvent } from '../src/k8s/api/client.ts';
import { findConnection } from '../src/k8s/api/connection.ts';
import { isKubeApiError, type KubeApiError } from '../src/k8s/api/errors.ts';
import { fromServiceAccount, serviceAccountFiles } from '../src/k8s/api/service-account.ts';
import { type OutriggerResource, ResourceWatch } from '../src/k8s/resource-watch.ts';
import { StatusWriter } from '../src/k8s/status-writer.ts';
import { createLogger } from '../src/telemetry/logger.ts';
import { installCrds } from './support/crds.ts';
import { startControlPlane } from './support/kube.ts';
import { freePort } from './support/ports.ts';
import { until } from './support/wait.ts';

const NAMESPACE = 'shop';
const kube = await startControlPlane(t);
await installCrds(kube.kubeConfig);
await kube.createNamespace(NAMESPACE);

// What the chart grants a sidecar, in one Role: read and watch the resources, write their status.
const objects = KubernetesObjectApi.makeApiClient(kube.kubeConfig);
await objects.create({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'Role',
  metadata: { name: 'sidecar', namespace: NAMESPACE },
  rules: [
    { apiGroups: ['outrigger.dev'], resources: ['subscriptions', 'outboundtargets'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['outrigger.dev'], resources: ['subscriptions/status', 'outboundtargets/status'], verbs: ['patch'] },
  ],
} as never);
await objects.create({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'RoleBinding',
  metadata: { name: 'sidecar', namespace: NAMESPACE },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'sidecar' },
  subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: NAMESPACE }],
} as never);

// The pod's view: the ServiceAccount's token and the cluster CA in the files a pod has, the API server in env.
const serviceAccount = await kube.asServiceAccount(NAMESPACE, 'default');
const saDir = await mkdtemp(join(tmpdir(), 'outrigger-sa-'));
t.teardown(() => rm(saDir, { recursive: true, force: true }));
const token = (serviceAccount.kubeConfig.getCurrentUser()?.token ?? '') as string;
await writeFile(join(saDir, 'token'), token);
await writeFile(join(saDir, 'ca.crt'), kube.caPem);
const server = new URL(kube.server);
const pod = new KubeClient(
  fromServiceAccount(
    { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port },
    serviceAccountFiles(saDir),
  ),
);
const admin = new KubeClient(findConnection({ KUBECONFIG: kube.kubeconfigPath }));
t.teardown(() => Promise.all([pod.close(), admin.close()]));

const custom = kube.kubeConfig.makeApiClient(CustomObjectsApi);
const where = { group: 'outrigger.dev', version: 'v1alpha1', namespace: NAMESPACE, plural: 'subscriptions' };
const SUBSCRIPTIONS = customResourcePath(where);
let topics = 0;
const createSubscription = (name: string, appId: string) =>
  custom.createNamespacedCustomObject({
    ...where,
    body: {
      apiVersion: 'outrigger.dev/v1alpha1',
      kind: 'Subscription',
      metadata: { name },
      spec: { appId, topic: `t${++topics}`, mode: 'pull' },
    },
  });
const setTopic = (name: string, topic: string) =>
  custom.patchNamespacedCustomObject({
    ...where,
    name,
    body: [{ op: 'replace', path: '/spec/topic', value: topic }],
  });
const deleteSubscription = (name: string) => custom.deleteNamespacedCustomObject({ ...where, name });

interface List {
  items: OutriggerResource[];
  metadata: { resourceVersion: string };
}

const names = (items: readonly OutriggerResource[]) => items.map((item) => item.metadata.name).sort();
const failure = (call: Promise<unknown>) =>
  call.then(
    () => undefined,
    (error: unknown) => error as KubeApiError,
  );

/** Watches in the background, collecting events, until `stop()`; `ended` settles with how the watch ended. */
function collect(client: KubeClient, query: Query) {
  const events: WatchEvent<OutriggerResource>[] = [];
  const abort = new AbortController();
  let opened = false;
  const ended = client
    .watch<OutriggerResource>(
      SUBSCRIPTIONS,
      query,
      (event) => events.push(event),
      abort.signal,
      () => {
        opened = true;
      },
    )
    .then(
      () => 'ended by the server',
      (error: unknown) => error as Error,
    );
  return { events, ended, opened: () => opened, stop: () => abort.abort() };
}

/** A ResourceWatch over `client`, counting the lists it makes and the changes it reports. */
function resourceWatch(client: KubeClient, appId: string, watchTimeoutSeconds?: number) {
  let lists = 0;
  let changes = 0;
  const counting = Object.create(client) as KubeClient;
  counting.get = <T>(path: string, query?: Query, signal?: AbortSignal) => {
    lists++;
    return client.get<T>(path, query, signal);
  };
  const watch = new ResourceWatch({
    api: counting,
    namespace: NAMESPACE,
    appId,
    kind: 'Subscription',
    logger: createLogger('silent'),
    onChange: () => {
      changes++;
    },
    ...(watchTimeoutSeconds === undefined ? {} : { watchTimeoutSeconds }),
  });
  t.teardown(() => watch.stop());
  return { watch, counting, lists: () => lists, changes: () => changes };
}

t.test("in a pod's place: a list with a field selector sees its app's resources only", async (t) => {
  await createSubscription('listed-a', 'lists');
  await createSubscription('listed-b', 'lists');
  await createSubscription('listed-other', 'someone-else');
  const list = await pod.get<List>(SUBSCRIPTIONS, { fieldSelector: 'spec.appId=lists' });
  t.same(names(list.items), ['listed-a', 'listed-b']);
  t.match(list.metadata.resourceVersion, /^\d+$/, 'with the resourceVersion to watch from');
});

t.test('a watch from that resourceVersion sees ADDED, MODIFIED and DELETED, and only its app', async (t) => {
  const { metadata } = await pod.get<List>(SUBSCRIPTIONS, { fieldSelector: 'spec.appId=events' });
  const watch = collect(pod, { fieldSelector: 'spec.appId=events', resourceVersion: metadata.resourceVersion });
  await createSubscription('watched', 'events');
  await createSubscription('unwatched', 'not-events');
  await setTopic('watched', 'changed');
  await deleteSubscription('watched');
  await until('three events', () => watch.events.length >= 3);
  t.ok(watch.opened(), 'onOpen was called');
  t.same(
    watch.events.map((event) => [event.type, event.object.metadata.name]),
    [
      ['ADDED', 'watched'],
      ['MODIFIED', 'watched'],
      ['DELETED', 'watched'],
    ],
  );
  t.match(watch.events[1]?.object, { spec: { topic: 'changed' } }, 'events carry the whole object');
  watch.stop();
  t.match(await watch.ended, { name: 'AbortError' }, 'the signal ends it');
});

t.test('the server ends a watch at its timeoutSeconds, after a bookmark of what it filtered out', async (t) => {
  const { metadata } = await pod.get<List>(SUBSCRIPTIONS, { fieldSelector: 'spec.appId=bookmarks' });
  const started = Date.now();
  const watch = collect(pod, {
    fieldSelector: 'spec.appId=bookmarks',
    resourceVersion: metadata.resourceVersion,
    allowWatchBookmarks: true,
    timeoutSeconds: 5,
  });
  await until('the watch to open', () => watch.opened());
  // Another app's resource: not an event for this watch, but the resourceVersion moves past it.
  const other = (await createSubscription('not-bookmarks', 'someone-else')) as OutriggerResource;
  t.equal(await watch.ended, 'ended by the server');
  const lasted = Date.now() - started;
  t.ok(lasted >= 4_500 && lasted < 20_000, `ended after ${lasted} ms`);
  t.same(
    watch.events.map((event) => event.type),
    ['BOOKMARK'],
    'one BOOKMARK (the API server sends one shortly before a watch times out), no other event',
  );
  const bookmarked = Number(watch.events[0]?.object.metadata.resourceVersion);
  t.ok(
    bookmarked >= Number(other.metadata.resourceVersion),
    `the bookmark (${bookmarked}) is past the other app's resource (${other.metadata.resourceVersion}): a watch resumed from it will not see that again`,
  );
});

t.test('ResourceWatch resumes each watch the server ends, without listing again', async (t) => {
  await createSubscription('resumed-before', 'resume');
  const { watch, lists } = resourceWatch(pod, 'resume', 1);
  await watch.start();
  t.ok(watch.synced);
  t.same(names(watch.list()), ['resumed-before']);
  // Watches of 1 s: by now several have ended and been resumed.
  await new Promise((resolve) => setTimeout(resolve, 3_500));
  await createSubscription('resumed-after', 'resume');
  await until('the new resource', () => watch.list().length === 2);
  await deleteSubscription('resumed-before');
  await until('the deleted one to go', () => watch.list().length === 1);
  t.same(names(watch.list()), ['resumed-after']);
  t.equal(lists(), 1, 'listed once: every new watch went on from the last resourceVersion');
  t.equal(watch.detail, 'watching');
});

t.test('a resourceVersion the server no longer has: 410, and ResourceWatch lists again', async (t) => {
  // The watch cache of a resource keeps the history since it started (here: since the CRD was
  // installed), so resourceVersion 1 is too old: the API server answers 200, then an ERROR event.
  const old = collect(pod, { fieldSelector: 'spec.appId=gone', resourceVersion: '1' });
  const error = await old.ended;
  t.ok(isKubeApiError(error), 'a KubeApiError');
  t.match(error, { code: 410, reason: /Expired|Gone/, message: /too old resource version/ });

  await createSubscription('relisted', 'gone');
  const { watch, counting, lists, changes } = resourceWatch(pod, 'gone');
  // The first list claims resourceVersion 1, as if the watch had been gone long enough to be compacted away.
  const get = counting.get;
  counting.get = async <T>(path: string, query?: Query, signal?: AbortSignal) => {
    const list = (await get<List>(path, query, signal)) as List;
    return (lists() === 1 ? { ...list, metadata: { ...list.metadata, resourceVersion: '1' } } : list) as T;
  };
  await watch.start();
  await until('a second list', () => lists() === 2);
  t.same(names(watch.list()), ['relisted']);
  t.ok(changes() >= 2, 'each list is a change');
  await createSubscription('after-relist', 'gone');
  await until('the watch from the new list', () => watch.list().length === 2);
  t.equal(lists(), 2, 'one list after the 410, no more');
  t.equal(watch.detail, 'watching', 'no back-off for a 410');
});

t.test("ResourceWatch: the sidecars' status writes are not changes to apply; a spec change is", async (t) => {
  await createSubscription('generations', 'generations');
  const { watch, changes } = resourceWatch(pod, 'generations');
  await watch.start();
  t.equal(changes(), 1, 'the list');
  const [listed] = watch.list() as OutriggerResource[];
  const statuses = new StatusWriter({ api: pod, namespace: NAMESPACE, logger: createLogger('silent') });
  await statuses.write('Subscription', [
    { resource: listed as OutriggerResource, ready: true, reason: 'Applied', message: 'ok' },
  ]);
  const cached = await until('the status in the cache', () => watch.list()[0]?.status?.conditions?.[0]);
  t.match(cached, { type: 'Ready', status: 'True', observedGeneration: 1 });
  t.equal(watch.list()[0]?.metadata.generation, 1, 'the API server kept the generation for a status write');
  t.equal(changes(), 1, 'the status write was not a change');
  await setTopic('generations', 'changed');
  await until('the new spec in the cache', () => watch.list()[0]?.metadata.generation === 2);
  t.equal(changes(), 2, 'the new spec was one');
});

t.test('status: a JSON patch to /status, written only when it changes', async (t) => {
  await createSubscription('with-status', 'status');
  const path = customResourcePath(where, 'with-status');
  const read = () => pod.get<OutriggerResource>(path);
  const statuses = new StatusWriter({ api: pod, namespace: NAMESPACE, logger: createLogger('silent') });
  const verdict = async () => ({
    resource: await read(),
    ready: false,
    reason: 'InvalidSpec' as const,
    message: 'spec.route: required when mode is push',
  });
  await statuses.write('Subscription', [await verdict()]);
  const written = await read();
  t.match(written.status, {
    observedGeneration: 1,
    conditions: [{ type: 'Ready', status: 'False', reason: 'InvalidSpec', observedGeneration: 1 }],
  });
  await statuses.write('Subscription', [await verdict()]);
  t.equal((await read()).metadata.resourceVersion, written.metadata.resourceVersion, 'the same verdict: no write');

  const patched = await pod.patch<OutriggerResource>(`${path}/status`, [
    { op: 'replace', path: '/status/conditions/0/status', value: 'True' },
  ]);
  t.equal(patched.status?.conditions?.[0]?.status, 'True', 'patch answers with the patched object');
  const refused = await failure(pod.patch(path, [{ op: 'replace', path: '/spec/topic', value: 'x' }]));
  t.match(refused, { code: 403, reason: 'Forbidden' }, 'the spec is not the sidecar to change');
});

t.test('RBAC: a 403 with the API server message; a watch with no grant still syncs, with none', async (t) => {
  const nobody = new KubeClient(findConnection({ KUBECONFIG: (await kube.asUser('nobody')).kubeconfigPath }));
  t.teardown(() => nobody.close());
  const denied = await failure(nobody.get(SUBSCRIPTIONS));
  t.ok(isKubeApiError(denied));
  t.match(denied, {
    code: 403,
    reason: 'Forbidden',
    message: /subscriptions\.outrigger\.dev is forbidden: User "nobody" cannot list resource "subscriptions"/,
  });
  const watchDenied = collect(nobody, {});
  t.match(await watchDenied.ended, { code: 403 }, 'a watch too');
  t.notOk(watchDenied.opened(), 'never opened');

  const { watch } = resourceWatch(nobody, 'denied');
  await watch.start();
  t.ok(watch.synced, 'synced: an app without RBAC must still become ready');
  t.match(watch.detail, /^none \(403 .*forbidden.*; retrying in 250 ms\)$/);
  t.same(watch.list(), []);
});

t.test("a status write refused: logged with the API server's message, not only its code", async (t) => {
  await createSubscription('refused-status', 'refused-status');
  const resource = await admin.get<OutriggerResource>(customResourcePath(where, 'refused-status'));
  const nobody = new KubeClient(findConnection({ KUBECONFIG: (await kube.asUser('nobody')).kubeconfigPath }));
  t.teardown(() => nobody.close());
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('warn', { write: (line: string) => lines.push(JSON.parse(line)) });
  const retry = { initialMs: 20, maxMs: 20 };
  const statuses = new StatusWriter({ api: nobody, namespace: NAMESPACE, logger, retry });
  t.teardown(() => statuses.stop());
  await statuses.write('Subscription', [{ resource, ready: true, reason: 'Applied', message: 'ok' }]);
  await sleep(200);
  t.equal(lines.length, 1, 'tried once: a 403 is not retried (the next change tries again)');
  t.equal(statuses.retrying, 0);
  t.notOk('retryInMs' in (lines[0] ?? {}), 'the line says no retry');
  t.match(lines[0], {
    level: 'warn',
    msg: 'cannot write the status of a resource',
    kind: 'Subscription',
    name: 'refused-status',
    err: {
      type: 'KubeApiError',
      code: 403,
      reason: 'Forbidden',
      message: /User "nobody" cannot patch resource "subscriptions\/status"/,
      stack: /KubeApiError/,
    },
  });
});

t.test('a status write failing with a server error is retried, with a back-off, until it is written', async (t) => {
  // A validating webhook on subscriptions/status that nothing answers, with failurePolicy Fail: the API server
  // answers these resources' status writes 500 (failed calling webhook), as in a blip of its own, until it goes.
  const labels = { 'test.outrigger.dev/flaky-status': 'true' };
  const flaky = ['flaky-newer', 'flaky-deleted', 'flaky-respecced', 'flaky-probe'];
  for (const name of flaky) {
    await custom.createNamespacedCustomObject({
      ...where,
      body: {
        apiVersion: 'outrigger.dev/v1alpha1',
        kind: 'Subscription',
        metadata: { name, labels },
        spec: { appId: 'flaky', topic: `t${++topics}`, mode: 'pull' },
      },
    });
  }
  const admission = kube.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  await admission.createValidatingWebhookConfiguration({
    body: {
      metadata: { name: 'refuse-status' },
      webhooks: [
        {
          name: 'refuse-status.test.outrigger.dev',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Fail',
          timeoutSeconds: 2,
          clientConfig: { url: `https://127.0.0.1:${await freePort()}/` },
          rules: [
            {
              operations: ['UPDATE'],
              apiGroups: ['outrigger.dev'],
              apiVersions: ['v1alpha1'],
              resources: ['subscriptions/status'],
            },
          ],
          objectSelector: { matchLabels: labels },
        },
      ],
    },
  });
  let removed: Promise<unknown> | undefined;
  const removeWebhook = () => {
    removed ??= admission.deleteValidatingWebhookConfiguration({ name: 'refuse-status' });
    return removed;
  };
  t.teardown(removeWebhook);
  // The API server picks up a webhook configuration through an informer: wait until it refuses.
  const probe = customResourcePath(where, 'flaky-probe', 'status');
  await until(
    'the API server to refuse status writes',
    async () => (await failure(admin.patch(probe, [{ op: 'add', path: '/status', value: {} }])))?.code === 500,
  );

  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', { write: (line: string) => lines.push(JSON.parse(line)) });
  const statuses = new StatusWriter({ api: pod, namespace: NAMESPACE, logger, retry: { initialMs: 100, maxMs: 400 } });
  t.teardown(() => statuses.stop());
  const read = (name: string) => admin.get<OutriggerResource>(customResourcePath(where, name));
  const verdict = async (name: string, message: string) => ({
    resource: await read(name),
    ready: true,
    reason: 'Applied' as const,
    message,
  });
  const failures = (name: string) =>
    lines.filter((line) => line.msg === 'cannot write the status of a resource' && line.name === name);

  await statuses.write('Subscription', [
    await verdict('flaky-newer', 'first'),
    await verdict('flaky-deleted', 'ok'),
    await verdict('flaky-respecced', 'ok'),
  ]);
  t.equal(statuses.retrying, 3, 'written once each, and failed: all three wait for a retry');
  t.match(failures('flaky-newer')[0], {
    level: 'warn',
    kind: 'Subscription',
    retryInMs: Number,
    err: { code: 500, message: /failed calling webhook "refuse-status\.test\.outrigger\.dev"/ },
  });
  await until('four failed tries', () => failures('flaky-newer').length >= 4);
  // Full jitter: each wait anywhere up to its longest, which doubles up to the cap (exact values with a fixed
  // random in status-writer.test.ts).
  const longest = [100, 200, 400, 400];
  const waits = failures('flaky-newer')
    .slice(0, 4)
    .map((line) => line.retryInMs);
  t.ok(
    longest.every((max, i) => {
      const wait = waits[i];
      return typeof wait === 'number' && Number.isInteger(wait) && wait >= 0 && wait <= max;
    }),
    `the longest wait doubles, up to its cap: ${waits.join(', ')} within ${longest.join(', ')}`,
  );
  const jittered = ['flaky-newer', 'flaky-deleted', 'flaky-respecced'].flatMap((name) =>
    failures(name)
      .slice(0, 3)
      .map((line) => line.retryInMs),
  );
  t.ok(new Set(jittered).size > 1, `three resources failing together do not all wait alike: ${jittered.join(', ')}`);

  // Meanwhile: a newer verdict for one, another deleted, the third with a new spec.
  await statuses.write('Subscription', [await verdict('flaky-newer', 'second')]);
  await deleteSubscription('flaky-deleted');
  await setTopic('flaky-respecced', 'respecced');
  await until('the deleted and the respecced to be given up', () => statuses.retrying === 1);
  t.ok(
    lines.some(
      (line) => line.msg === 'not writing the status of a resource: it was deleted' && line.name === 'flaky-deleted',
    ),
    'the deleted one: said so',
  );

  await removeWebhook();
  await until(
    'the newer verdict to be written',
    async () => (await read('flaky-newer')).status?.conditions?.[0]?.message === 'second',
  );
  t.match((await read('flaky-newer')).status, {
    observedGeneration: 1,
    conditions: [{ type: 'Ready', status: 'True', reason: 'Applied', message: 'second', observedGeneration: 1 }],
  });
  await until('no retry left', () => statuses.retrying === 0);
  t.ok(lines.some((line) => line.msg === 'wrote the status after all' && line.name === 'flaky-newer'));
  t.equal((await read('flaky-respecced')).status, undefined, 'no verdict about the old spec over the new one');
  const settled = lines.length;
  await sleep(500);
  t.equal(lines.length, settled, 'nothing tried after that');
});

t.test('a missing resource is a 404 KubeApiError', async (t) => {
  t.match(await failure(admin.get(customResourcePath(where, 'no-such'))), { code: 404, reason: 'NotFound' });
});

t.test('kubeconfig TLS: tls-server-name is the name checked, insecure-skip-tls-verify skips the check', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'outrigger-kubeconfig-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'ca.crt'), kube.caPem);
  await writeFile(join(dir, 'token'), `${token}\n`);
  const kubeconfig = async (name: string, cluster: Record<string, unknown>) => {
    const path = join(dir, `${name}.kubeconfig`);
    await writeFile(
      path,
      JSON.stringify({
        clusters: [{ name: 'c', cluster: { server: kube.server, ...cluster } }],
        users: [{ name: 'u', user: { tokenFile: 'token' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u', namespace: NAMESPACE } }],
        'current-context': 'x',
      }),
    );
    return new KubeClient(findConnection({ KUBECONFIG: path }));
  };
  const list = (client: KubeClient) =>
    client.get<List>(SUBSCRIPTIONS, { fieldSelector: 'spec.appId=lists' }).then(
      (answer) => names(answer.items),
      (error: unknown) => error as Error,
    );
  const clients = {
    named: await kubeconfig('named', { 'certificate-authority': 'ca.crt', 'tls-server-name': 'localhost' }),
    wrongName: await kubeconfig('wrong', { 'certificate-authority': 'ca.crt', 'tls-server-name': 'elsewhere.test' }),
    noCa: await kubeconfig('no-ca', {}),
    insecure: await kubeconfig('insecure', { 'insecure-skip-tls-verify': true }),
  };
  t.teardown(() => Promise.all(Object.values(clients).map((client) => client.close())));
  t.same(await list(clients.named), ['listed-a', 'listed-b'], 'the certificate names localhost');
  t.match(await list(clients.wrongName), { message: /elsewhere\.test/ }, 'not elsewhere.test');
  t.match(await list(clients.noCa), { message: /certificate/ }, "the test CA is not among Node's");
  t.same(await list(clients.insecure), ['listed-a', 'listed-b'], 'insecure-skip-tls-verify');
});
