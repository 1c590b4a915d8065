// An injected sidecar in a pod without a ServiceAccount token
// (automountServiceAccountToken: false, on the pod or its ServiceAccount):
// OUTRIGGER_KUBERNETES=true from the injector (which sets it in every pod),
// KUBERNETES_SERVICE_HOST from the kubelet, no token and no kubeconfig. The
// built CLI runs without the watch and says why, instead of exiting 2 and
// keeping the app from starting. A configuration file that asks for the watch
// itself is still refused.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { NO_CLUSTER } from '../src/k8s/api/connection.ts';
import { SERVICE_ACCOUNT } from '../src/k8s/api/service-account.ts';
import { KUBERNETES_CHECK, NO_TOKEN } from '../src/k8s/cluster.ts';
import { loadInjectorConfig } from '../src/k8s/injector/injector-config.ts';
import { PodSchema } from '../src/k8s/injector/pod.ts';
import { podPatch } from '../src/k8s/injector/pod-patch.ts';
import { sidecarOf } from './support/injected-sidecar.ts';
import { configFile, exitFailure, runCli } from './support/sidecar-process.ts';
import { statusOf, until } from './support/wait.ts';

/** The sidecar would find this machine's own token. */
const skip = existsSync(SERVICE_ACCOUNT.token) && `this machine has a ServiceAccount token (${SERVICE_ACCOUNT.token})`;

const home = mkdtempSync(join(tmpdir(), 'outrigger-no-token-'));
t.teardown(() => rmSync(home, { recursive: true, force: true }));

/** The variables with a value that the injector gives the sidecar of a pod with automountServiceAccountToken: false. */
function injectedEnv(): Record<string, string> {
  const config = loadInjectorConfig();
  const pod = PodSchema.parse({
    metadata: { name: 'web', namespace: 'shop' },
    spec: { automountServiceAccountToken: false, containers: [{ name: 'app', image: 'orders:1' }] },
  });
  const patch = podPatch(pod, { appId: 'orders', logLevel: 'info', resources: config.resources }, config);
  return Object.fromEntries(
    sidecarOf(patch).env.flatMap(({ name, value }) => (value === undefined ? [] : [[name, value]])),
  );
}

const injected = injectedEnv();
/** What the injector and the kubelet give the sidecar of such a pod; the broker is nowhere (not needed here). */
const podEnv = {
  ...injected,
  HOME: home,
  KUBECONFIG: '',
  KUBERNETES_SERVICE_HOST: '127.0.0.1',
  KUBERNETES_SERVICE_PORT: '1',
  OUTRIGGER_NAMESPACE: 'shop',
  // Free ports rather than the injected ones, which another process on this machine may hold.
  OUTRIGGER_HTTP_PORT: '0',
  OUTRIGGER_OPS_PORT: '0',
  OUTRIGGER_BROKER_URL: 'amqp://127.0.0.1:1',
};

t.test('the injector sets OUTRIGGER_KUBERNETES in such a pod', async (t) => {
  t.equal(injected.OUTRIGGER_KUBERNETES, 'true');
});

t.test(
  'a pod with automountServiceAccountToken: false: the sidecar runs without the watch and says why',
  { skip },
  async (t) => {
    const sidecar = runCli(t, ['sidecar'], podEnv);
    const started = await until(
      'the sidecar to log "sidecar started"',
      () => sidecar.logs.find((line) => line.msg === 'sidecar started'),
      { failOn: exitFailure(sidecar, 'the sidecar') },
    );
    const ops = started.ops as string;
    t.equal(await statusOf(`${ops}/healthz`), 200, 'alive: the startup probe passes and the app can start');
    const report = (await (await fetch(`${ops}/readyz`)).json()) as { checks: Record<string, unknown> };
    t.same(report.checks[KUBERNETES_CHECK], { ok: true, detail: NO_TOKEN }, 'readiness says why there is no watch');
    const warnings = sidecar.logs.filter((line) => String(line.msg).startsWith('running without the Kubernetes'));
    t.equal(warnings.length, 1, 'one warning');
    t.match(warnings[0], { level: 'warn', detail: NO_TOKEN });
    t.same(await sidecar.stop('SIGTERM'), { code: 0, signal: null });
  },
);

t.test('a configuration file that asks for the watch: still refused (exit 2)', { skip }, async (t) => {
  const file = configFile(t, { kubernetes: { watch: true } });
  const sidecar = runCli(t, ['sidecar', '--config', file], podEnv);
  t.same(await sidecar.exited, { code: 2, signal: null });
  t.equal(sidecar.stderr(), `outrigger: ${NO_CLUSTER}\n`);
});
