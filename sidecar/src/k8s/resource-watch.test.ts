// The watch loop against a scripted API server: back-off and its reset, what
// readiness says when the API server refuses, and a stop that does not wait
// for a call that hangs. sidecar/test/kube-client.test.ts runs it against a real one.
import t from 'tap';
import { createLogger } from '../telemetry/logger.ts';
import type { KubeClient, Query, WatchEvent } from './api/client.ts';
import { KubeApiError } from './api/errors.ts';
import { type OutriggerResource, ResourceWatch } from './resource-watch.ts';

type Step = () => Promise<unknown>;

/** Rejects when `signal` aborts, as the real client's calls do. */
const abortion = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));

/** A client whose lists and watches do, in turn, what `lists` and `watches` say; the last step repeats. */
function scripted(lists: Step[], watches: ((onEvent: (e: WatchEvent<OutriggerResource>) => void) => Promise<void>)[]) {
  const calls: { at: number; call: string; query?: Query }[] = [];
  const started = Date.now();
  let list = 0;
  let watch = 0;
  const client = {
    get: async (_path: string, query: Query, signal: AbortSignal) => {
      calls.push({ at: Date.now() - started, call: 'list', query });
      const step = lists[Math.min(list++, lists.length - 1)] as Step;
      return Promise.race([step(), abortion(signal)]);
    },
    watch: async (
      _path: string,
      query: Query,
      onEvent: (e: WatchEvent<OutriggerResource>) => void,
      signal: AbortSignal,
      onOpen?: () => void,
    ) => {
      calls.push({ at: Date.now() - started, call: 'watch', query });
      const step = watches[Math.min(watch++, watches.length - 1)];
      onOpen?.();
      await Promise.race([step?.(onEvent), abortion(signal)]);
    },
  };
  return { client: client as unknown as KubeClient, calls };
}

const resource = (name: string, resourceVersion: string): OutriggerResource => ({
  metadata: { name, resourceVersion },
  spec: { appId: 'orders' },
});
const listOf =
  (resourceVersion: string, ...items: OutriggerResource[]) =>
  async () => ({
    items,
    metadata: { resourceVersion },
  });
const refuse = (code: number, message: string) => async () => {
  throw new KubeApiError(code, { message, reason: 'x' });
};
const forever = () => new Promise<void>(() => {});

function watchOf(client: KubeClient, onChange = () => {}) {
  const watch = new ResourceWatch({
    api: client,
    namespace: 'shop',
    appId: 'orders',
    kind: 'Subscription',
    logger: createLogger('silent'),
    onChange,
    watchTimeoutSeconds: 300,
  });
  t.teardown(() => watch.stop());
  return watch;
}

/** Waits (at most 10 s) until `done()`. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

t.test('a 404 before the first list: synced, with none, and retried with a doubling back-off', async (t) => {
  const details: string[] = [];
  const noted =
    (step: Step): Step =>
    () => {
      details.push(watch.detail);
      return step();
    };
  const { client, calls } = scripted(
    [
      noted(refuse(404, 'the server could not find the requested resource')),
      noted(refuse(404, 'again')),
      noted(listOf('7')),
    ],
    [forever],
  );
  const watch = watchOf(client);
  await watch.start();
  t.ok(watch.synced, 'ready: an app without the CRDs has no resources');
  t.equal(watch.detail, 'none (404 the server could not find the requested resource; retrying in 250 ms)');
  await until(() => calls.length === 4);
  t.same(
    calls.map((c) => c.call),
    ['list', 'list', 'list', 'watch'],
  );
  t.same(details.slice(1), [
    'none (404 the server could not find the requested resource; retrying in 250 ms)',
    'retrying in 500 ms: 404 again',
  ]);
  const gap = (calls[1]?.at ?? 0) - (calls[0]?.at ?? 0);
  t.ok(gap >= 240, `the first retry came after ${gap} ms`);
  t.match(calls[3]?.query, { resourceVersion: '7', allowWatchBookmarks: true, fieldSelector: 'spec.appId=orders' });
  t.equal(watch.detail, 'watching');
});

t.test('a failure is logged under err, as the rest of k8s/ logs errors: its code and message with it', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const { client, calls } = scripted([refuse(403, 'subscriptions is forbidden'), listOf('7')], [forever]);
  const watch = new ResourceWatch({
    api: client,
    namespace: 'shop',
    appId: 'orders',
    kind: 'Subscription',
    logger: createLogger('warn', { write: (line: string) => lines.push(JSON.parse(line)) }),
    onChange: () => {},
    watchTimeoutSeconds: 300,
  });
  t.teardown(() => watch.stop());
  await watch.start();
  await until(() => calls.length === 3);
  t.match(lines, [
    {
      level: 'warn',
      msg: 'watching resources failed; keeping the last known ones',
      kind: 'Subscription',
      retryInMs: 250,
      err: { type: 'KubeApiError', code: 403, message: 'subscriptions is forbidden' },
    },
  ]);
  t.notOk('error' in (lines[0] ?? {}), 'one field for the error');
});

t.test('a failing watch lists again after the back-off; an accepted watch resets it', async (t) => {
  const details: string[] = [];
  const noted = (resourceVersion: string) => () => {
    details.push(watch.detail);
    return listOf(resourceVersion)();
  };
  const { client, calls } = scripted(
    [noted('1'), noted('2'), noted('3')],
    [refuse(500, 'etcd is sad'), refuse(500, 'still'), forever],
  );
  const watch = watchOf(client);
  await watch.start();
  await until(() => calls.length === 6);
  t.same(
    calls.map((c) => c.call),
    ['list', 'watch', 'list', 'watch', 'list', 'watch'],
  );
  // Each watch was accepted (onOpen) before it failed: the back-off starts afresh every time.
  t.same(details.slice(1), ['retrying in 250 ms: 500 etcd is sad', 'retrying in 250 ms: 500 still']);
});

t.test('events update the cache; a bookmark moves the resourceVersion only; a 410 lists again at once', async (t) => {
  let changes = 0;
  const seen: string[][] = [];
  const cached = () => watch.list().map((r) => `${r.metadata.name}@${r.metadata.resourceVersion}`);
  const { client, calls } = scripted(
    [listOf('10', resource('a', '9')), listOf('20', resource('c', '19'))],
    [
      async (onEvent) => {
        onEvent({ type: 'ADDED', object: resource('b', '11') });
        onEvent({ type: 'MODIFIED', object: resource('a', '12') });
        onEvent({ type: 'BOOKMARK', object: resource('', '15') });
      },
      async (onEvent) => {
        seen.push(cached());
        onEvent({ type: 'DELETED', object: resource('a', '16') });
        seen.push(cached());
        throw new KubeApiError(410, { message: 'too old resource version: 15 (18)', reason: 'Expired' });
      },
      forever,
    ],
  );
  const watch = watchOf(client, () => changes++);
  await watch.start();
  await until(() => calls.length === 5);
  t.same(
    calls.map((c) => [c.call, c.query?.resourceVersion]),
    [
      ['list', undefined],
      ['watch', '10'],
      ['watch', '15'],
      ['list', undefined],
      ['watch', '20'],
    ],
    'resumed from the bookmark; listed again right after the 410',
  );
  t.same(
    seen.map((names) => [...names].sort()),
    [['a@12', 'b@11'], ['b@11']],
    'ADDED and MODIFIED stored, DELETED removed',
  );
  t.same(
    watch.list().map((r) => r.metadata.name),
    ['c'],
    'the new list replaced the cache',
  );
  t.equal(changes, 5, 'a change per list and per event, none for the bookmark');
});

t.test(
  'a change of status alone (the sidecars write it) is cached but applies nothing; a change of spec does',
  async (t) => {
    const at = (generation: number, resourceVersion: string, status?: OutriggerResource['status']) => ({
      metadata: { name: 'a', generation, resourceVersion },
      spec: { appId: 'orders', topic: `t${generation}` },
      ...(status === undefined ? {} : { status }),
    });
    const ready = { observedGeneration: 1, conditions: [] };
    let changes = 0;
    const changesAt: number[] = [];
    let cachedAfterStatus: OutriggerResource | undefined;
    const { client, calls } = scripted(
      [listOf('10', at(1, '9'))],
      [
        async (onEvent) => {
          changesAt.push(changes);
          onEvent({ type: 'MODIFIED', object: at(1, '11', ready) });
          changesAt.push(changes);
          cachedAfterStatus = watch.list()[0];
          onEvent({ type: 'MODIFIED', object: at(2, '12', ready) });
          changesAt.push(changes);
          await forever();
        },
      ],
    );
    const watch = watchOf(client, () => changes++);
    await watch.start();
    await until(() => changesAt.length === 3);
    t.equal(calls.length, 2);
    t.same(changesAt, [1, 1, 2], 'the list and the new spec are changes; the status write is not');
    t.same(cachedAfterStatus, at(1, '11', ready), 'the status written is in the cache (the status writer reads it)');
    t.same(watch.list(), [at(2, '12', ready)], 'the new spec too');
  },
);

t.test('stop() does not wait for a list that hangs', async (t) => {
  const { client } = scripted([forever], [forever]);
  const watch = watchOf(client);
  void watch.start();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const started = Date.now();
  await watch.stop();
  t.ok(Date.now() - started < 100, 'stopped at once');
});
