// Where the API server is found: KUBECONFIG (its first file), else
// ~/.kube/config, else the pod's ServiceAccount; and the namespace watched.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { isConfigError, loadConfig, parseConfig } from '../../config/load.ts';
import { connectCluster, NO_TOKEN, watchWithoutToken } from '../cluster.ts';
import { findConnection, NO_CLUSTER } from './connection.ts';
import { serviceAccountFiles } from './service-account.ts';

const dir = mkdtempSync(join(tmpdir(), 'outrigger-connection-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const config = (server: string, namespace?: string) =>
  JSON.stringify({
    clusters: [{ name: 'c', cluster: { server } }],
    contexts: [{ name: 'x', context: { cluster: 'c', ...(namespace === undefined ? {} : { namespace }) } }],
    'current-context': 'x',
  });
writeFileSync(join(dir, 'first'), config('https://first.example', 'from-context'));
writeFileSync(join(dir, 'second'), config('https://second.example'));
const home = join(dir, 'home');
mkdirSync(join(home, '.kube'), { recursive: true });
writeFileSync(join(home, '.kube', 'config'), config('https://home.example'));
const nowhere = join(dir, 'nowhere');

// A pod's files, moved here.
const pod = join(dir, 'serviceaccount');
mkdirSync(pod);
writeFileSync(join(pod, 'token'), 'pod-token\n');
writeFileSync(join(pod, 'ca.crt'), 'POD CA');
const inPod = serviceAccountFiles(pod);
const podEnv = { HOME: nowhere, KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

function problems(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (isConfigError(error)) return error.problems.join('\n');
    throw error;
  }
  return 'accepted';
}

t.test('KUBECONFIG first (the first file of a list), then ~/.kube/config, then the pod', async (t) => {
  const list = `${join(dir, 'first')}:${join(dir, 'second')}`;
  t.equal(findConnection({ KUBECONFIG: list, HOME: home }, inPod).server.host, 'first.example');
  t.equal(findConnection({ KUBECONFIG: `:${join(dir, 'second')}`, HOME: home }, inPod).server.host, 'second.example');
  t.equal(findConnection({ ...podEnv, HOME: home }, inPod).server.host, 'home.example');
  const fromPod = findConnection(podEnv, inPod);
  t.equal(fromPod.server.href, 'https://10.96.0.1/', 'port 443 is https');
  t.same(fromPod.tls, { ca: 'POD CA', rejectUnauthorized: true });
  t.equal(await fromPod.token?.token(), 'pod-token');
});

t.test('an IPv6 Service address goes in brackets', async (t) => {
  const env = { ...podEnv, KUBERNETES_SERVICE_HOST: 'fd00:10:96::1', KUBERNETES_SERVICE_PORT: '6443' };
  t.equal(findConnection(env, inPod).server.origin, 'https://[fd00:10:96::1]:6443');
});

t.test('nothing to connect to, or a pod without its environment', async (t) => {
  t.equal(
    problems(() => findConnection({ HOME: nowhere }, serviceAccountFiles(nowhere))),
    NO_CLUSTER,
  );
  t.equal(
    problems(() => findConnection({ HOME: nowhere }, inPod)),
    "kubernetes.watch: cannot use the pod's ServiceAccount (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not both set)",
  );
  t.match(
    problems(() => findConnection(podEnv, { ...inPod, ca: join(nowhere, 'ca.crt') })),
    /^kubernetes\.watch: cannot use the pod's ServiceAccount \(ENOENT/,
  );
});

t.test('the namespace: configuration, else the pod, else the kubeconfig context', async (t) => {
  const env = { KUBECONFIG: join(dir, 'first') };
  const noPod = serviceAccountFiles(nowhere);
  const watch = (namespace?: string) =>
    parseConfig({ appId: 'orders', kubernetes: { watch: true, ...(namespace === undefined ? {} : { namespace }) } });
  const clusters = [
    connectCluster(watch('configured'), env, { ...inPod, namespace: join(pod, 'namespace') }),
    connectCluster(watch(), env, noPod),
  ];
  writeFileSync(join(pod, 'namespace'), 'pods-own\n');
  clusters.push(connectCluster(watch(), env, inPod));
  t.teardown(() => Promise.all(clusters.map((cluster) => cluster.api.close())));
  t.same(
    clusters.map((cluster) => cluster.namespace),
    ['configured', 'from-context', 'pods-own'],
  );
  t.equal(
    problems(() => connectCluster(watch(), { KUBECONFIG: join(dir, 'second') }, noPod)),
    'kubernetes.namespace: required outside a pod (or OUTRIGGER_NAMESPACE)',
  );
});

t.test('OUTRIGGER_KUBERNETES in a pod without a token: no watch, rather than no sidecar', async (t) => {
  const noPod = serviceAccountFiles(nowhere);
  const injected = { ...podEnv, OUTRIGGER_KUBERNETES: 'true' };
  const file = join(dir, 'outrigger.yaml');
  /** As the sidecar loads it: the file (this YAML, if any), then the environment. */
  const load = (env: NodeJS.ProcessEnv, yaml?: string) => {
    if (yaml !== undefined) writeFileSync(file, yaml);
    return loadConfig({
      file: yaml === undefined ? undefined : file,
      env: { ...env, OUTRIGGER_APP_ID: 'orders' },
    });
  };
  t.equal(watchWithoutToken(load(injected), injected, noPod), NO_TOKEN, 'the injected variable alone');
  t.equal(
    problems(() => connectCluster(load(injected).config, injected, noPod)),
    NO_CLUSTER,
    'which connectCluster would refuse',
  );

  t.equal(watchWithoutToken(load(injected), injected, inPod), undefined, 'with the token: the watch');
  const withKubeconfig = { ...injected, HOME: home };
  t.equal(watchWithoutToken(load(withKubeconfig), withKubeconfig, noPod), undefined, 'with a kubeconfig: the watch');
  const outside = { HOME: nowhere, OUTRIGGER_KUBERNETES: 'true' };
  t.equal(
    watchWithoutToken(load(outside), outside, noPod),
    undefined,
    'outside a pod (no KUBERNETES_SERVICE_HOST): strict, as the variable was set by hand',
  );
  t.equal(watchWithoutToken(load(podEnv), podEnv, noPod), undefined, 'no watch asked for');

  const asks = 'kubernetes: { watch: true }\n';
  t.equal(watchWithoutToken(load(injected, asks), injected, noPod), undefined, 'the file asks for it: strict');
  t.equal(watchWithoutToken(load(podEnv, asks), podEnv, noPod), undefined, 'the file alone asks for it: strict');
  t.equal(
    watchWithoutToken(load(injected, 'kubernetes: { namespace: shop }\n'), injected, noPod),
    NO_TOKEN,
    'a file that does not ask for it',
  );
  t.equal(
    watchWithoutToken(load(injected, 'kubernetes: { watch: false }\n'), injected, noPod),
    NO_TOKEN,
    'a file that says false, which the variable overrides',
  );
});
