import t from 'tap';
import { VERSION } from '../../version.ts';
import type { InjectionSettings } from './annotations.ts';
import { type InjectorConfig, loadInjectorConfig } from './injector-config.ts';
import { type Pod, PodSchema } from './pod.ts';
import { injectionConflicts, isInjected, type PatchOperation, podPatch, portWarnings } from './pod-patch.ts';

const config = loadInjectorConfig();
const settings: InjectionSettings = { appId: 'orders', logLevel: 'info', resources: config.resources };

type Json = Record<string, unknown>;

/** RFC 6902 `add`, the only operation the injector emits; throws where the API server's patcher would. */
function applyPatch(document: Json, patch: PatchOperation[]): Json {
  const result = structuredClone(document);
  for (const { op, path, value } of patch) {
    if (op !== 'add') throw new Error(`unexpected op ${op}`);
    const keys = path
      .split('/')
      .slice(1)
      .map((key) => key.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = keys.pop() as string;
    let parent: unknown = result;
    for (const key of keys) {
      parent = (parent as Json)[key];
      if (parent === undefined) throw new Error(`${path}: no parent`);
    }
    if (Array.isArray(parent)) {
      const index = last === '-' ? parent.length : Number(last);
      if (!(index >= 0 && index <= parent.length)) throw new Error(`${path}: index out of range`);
      parent.splice(index, 0, structuredClone(value));
    } else {
      (parent as Json)[last] = structuredClone(value);
    }
  }
  return result;
}

const podOf = (spec: Json, metadata: Json = {}): Json => ({ metadata: { name: 'web', ...metadata }, spec });
const patched = (raw: Json, with_: InjectionSettings = settings, cfg: InjectorConfig = config) => {
  const pod: Pod = PodSchema.parse(raw);
  return applyPatch(raw, podPatch(pod, with_, cfg)) as {
    metadata: { annotations: Record<string, string> };
    spec: { initContainers: Json[]; containers: { name: string; env?: Json[] }[]; volumes: Json[] };
  };
};

t.test('a plain pod gets the native sidecar, the volumes, the marker and OUTRIGGER_URL', async (t) => {
  const result = patched(podOf({ containers: [{ name: 'app', image: 'app:1' }] }));
  t.same(result.metadata.annotations, { 'outrigger.dev/injected': VERSION });
  t.equal(result.spec.initContainers.length, 1);
  const sidecar = result.spec.initContainers[0] as Json;
  t.match(sidecar, {
    name: 'outrigger',
    image: config.image,
    imagePullPolicy: 'IfNotPresent',
    restartPolicy: 'Always',
    resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } },
    startupProbe: { httpGet: { path: '/healthz', port: 'outrigger-ops' } },
    readinessProbe: { httpGet: { path: '/readyz', port: 'outrigger-ops' } },
    livenessProbe: { httpGet: { path: '/healthz', port: 'outrigger-ops' } },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 65532,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      seccompProfile: { type: 'RuntimeDefault' },
    },
  });
  // t.same for the arrays: t.match takes an array as a prefix.
  t.same(sidecar.args, ['sidecar']);
  t.same(sidecar.ports, [
    { name: 'outrigger-http', containerPort: 3600, protocol: 'TCP' },
    { name: 'outrigger-ops', containerPort: 9464, protocol: 'TCP' },
  ]);
  t.same((sidecar.securityContext as { capabilities?: unknown } | undefined)?.capabilities, { drop: ['ALL'] });
  t.same(sidecar.volumeMounts, [{ name: 'outrigger-tmp', mountPath: '/tmp' }]);
  t.notOk(JSON.stringify(sidecar.ports).includes('hostPort'), 'nothing published on the node');
  t.same(sidecar.env, [
    { name: 'OUTRIGGER_APP_ID', value: 'orders' },
    { name: 'OUTRIGGER_LOG_LEVEL', value: 'info' },
    { name: 'OUTRIGGER_HTTP_PORT', value: '3600' },
    { name: 'OUTRIGGER_OPS_PORT', value: '9464' },
    { name: 'OUTRIGGER_KUBERNETES', value: 'true' },
    { name: 'OUTRIGGER_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
    { name: 'OUTRIGGER_POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
  ]);
  t.same(result.spec.volumes, [{ name: 'outrigger-tmp', emptyDir: { sizeLimit: '64Mi' } }]);
  t.same(result.spec.containers[0]?.env, [{ name: 'OUTRIGGER_URL', value: 'http://127.0.0.1:3600' }]);
  t.ok(isInjected(PodSchema.parse(result)), 'the result counts as injected');
});

t.test("the sidecar goes first among the init containers; the pod's own fields stay", async (t) => {
  const result = patched(
    podOf(
      {
        initContainers: [{ name: 'migrate', image: 'migrate:1' }],
        containers: [
          { name: 'app', image: 'app:1', env: [{ name: 'MODE', value: 'prod' }] },
          { name: 'worker', image: 'app:1', env: [{ name: 'OUTRIGGER_URL', value: 'http://127.0.0.1:4000' }] },
        ],
        volumes: [{ name: 'data', emptyDir: {} }],
      },
      { annotations: { 'outrigger.dev/inject': 'true', team: 'a/b~c' } },
    ),
  );
  t.same(
    result.spec.initContainers.map((container) => container.name),
    ['outrigger', 'migrate'],
  );
  t.same(result.metadata.annotations, {
    'outrigger.dev/inject': 'true',
    team: 'a/b~c',
    'outrigger.dev/injected': VERSION,
  });
  t.same(result.spec.containers[0]?.env, [
    { name: 'MODE', value: 'prod' },
    { name: 'OUTRIGGER_URL', value: 'http://127.0.0.1:3600' },
  ]);
  t.same(
    result.spec.containers[1]?.env,
    [{ name: 'OUTRIGGER_URL', value: 'http://127.0.0.1:4000' }],
    "the app's own URL wins",
  );
  t.same(
    result.spec.volumes.map((volume) => volume.name),
    ['data', 'outrigger-tmp'],
  );
  const migrate = result.spec.initContainers[1] as Json;
  t.equal(migrate.env, undefined, 'init containers do not get OUTRIGGER_URL');
});

t.test('app port, config, broker Secret and extra env', async (t) => {
  const cfg = loadInjectorConfig();
  cfg.httpPort = 3700;
  cfg.brokerUrlSecret = { name: 'outrigger-broker', key: 'url' };
  cfg.env = [{ name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://collector:4318' }];
  const result = patched(
    podOf({ containers: [{ name: 'app', image: 'app:1' }] }),
    { ...settings, appPort: 8080, logLevel: 'debug', configMap: 'orders-sidecar' },
    cfg,
  );
  const sidecar = result.spec.initContainers[0] as { args: string[]; env: Json[]; volumeMounts: Json[] };
  t.same(sidecar.args, ['sidecar', '--config', '/etc/outrigger/outrigger.yaml']);
  t.same(sidecar.env.slice(0, 4), [
    { name: 'OUTRIGGER_APP_ID', value: 'orders' },
    { name: 'OUTRIGGER_APP_PORT', value: '8080' },
    { name: 'OUTRIGGER_LOG_LEVEL', value: 'debug' },
    { name: 'OUTRIGGER_HTTP_PORT', value: '3700' },
  ]);
  t.same(sidecar.env.slice(-2), [
    {
      name: 'OUTRIGGER_BROKER_URL',
      valueFrom: { secretKeyRef: { name: 'outrigger-broker', key: 'url', optional: true } },
    },
    { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://collector:4318' },
  ]);
  t.same(sidecar.volumeMounts, [
    { name: 'outrigger-tmp', mountPath: '/tmp' },
    { name: 'outrigger-config', mountPath: '/etc/outrigger', readOnly: true },
  ]);
  t.same(result.spec.volumes[1], {
    name: 'outrigger-config',
    configMap: { name: 'orders-sidecar', items: [{ key: 'outrigger.yaml', path: 'outrigger.yaml' }] },
  });
  t.same(result.spec.containers[0]?.env, [{ name: 'OUTRIGGER_URL', value: 'http://127.0.0.1:3700' }]);
});

t.test('outbox URL Secret: OUTRIGGER_OUTBOX_URL from it, not optional, after the broker URL', async (t) => {
  const cfg = loadInjectorConfig();
  cfg.brokerUrlSecret = { name: 'outrigger-broker', key: 'url' };
  cfg.env = [{ name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://collector:4318' }];
  const result = patched(
    podOf({ containers: [{ name: 'app', image: 'app:1' }] }),
    { ...settings, outboxUrlSecret: { name: 'orders-db', key: 'url' } },
    cfg,
  );
  const sidecar = result.spec.initContainers[0] as { env: Json[] };
  t.same(sidecar.env.slice(-3), [
    {
      name: 'OUTRIGGER_BROKER_URL',
      valueFrom: { secretKeyRef: { name: 'outrigger-broker', key: 'url', optional: true } },
    },
    // A missing Secret or key holds the sidecar (and so the app) in CreateContainerConfigError, never a relay-less run.
    { name: 'OUTRIGGER_OUTBOX_URL', valueFrom: { secretKeyRef: { name: 'orders-db', key: 'url', optional: false } } },
    { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://collector:4318' },
  ]);
  t.same(
    result.spec.containers[0]?.env,
    [{ name: 'OUTRIGGER_URL', value: 'http://127.0.0.1:3600' }],
    "the app container gets nothing of it: the relay is the sidecar's",
  );
  t.same(
    result.spec.volumes.map((volume) => volume.name),
    ['outrigger-tmp'],
    'no volume: the kubelet reads the Secret into the variable',
  );

  const without = patched(podOf({ containers: [{ name: 'app', image: 'app:1' }] }), settings, cfg);
  t.notOk(
    (without.spec.initContainers[0] as { env: Json[] }).env.some(
      (variable) => variable.name === 'OUTRIGGER_OUTBOX_URL',
    ),
    'no OUTRIGGER_OUTBOX_URL without the annotation',
  );
});

t.test("volume mounts: the pod's volumes, read-only in the sidecar only", async (t) => {
  const appMounts = [{ name: 'weather-token', mountPath: '/secrets' }];
  const result = patched(
    podOf({
      initContainers: [{ name: 'migrate', image: 'migrate:1' }],
      containers: [{ name: 'app', image: 'app:1', volumeMounts: appMounts }],
      volumes: [
        { name: 'weather-token', secret: { secretName: 'weather-api' } },
        { name: 'ledger-tls', secret: { secretName: 'ledger-client' } },
      ],
    }),
    {
      ...settings,
      configMap: 'orders-sidecar',
      volumeMounts: [
        { volume: 'weather-token', path: '/var/run/secrets/weather' },
        { volume: 'ledger-tls', path: '/var/run/secrets/ledger' },
      ],
    },
  );
  const [sidecar, migrate] = result.spec.initContainers as { volumeMounts?: Json[] }[];
  t.same(
    sidecar?.volumeMounts,
    [
      { name: 'outrigger-tmp', mountPath: '/tmp' },
      { name: 'outrigger-config', mountPath: '/etc/outrigger', readOnly: true },
      { name: 'weather-token', mountPath: '/var/run/secrets/weather', readOnly: true },
      { name: 'ledger-tls', mountPath: '/var/run/secrets/ledger', readOnly: true },
    ],
    "after the sidecar's own, in the annotation's order, never writable",
  );
  t.same((result.spec.containers[0] as Json).volumeMounts, appMounts, "the app container's mounts stay as they were");
  t.equal(migrate?.volumeMounts, undefined, "the app's init containers get none");
  t.same(
    result.spec.volumes.map((volume) => volume.name),
    ['weather-token', 'ledger-tls', 'outrigger-tmp', 'outrigger-config'],
    "the pod's volumes are used, not added again",
  );
});

t.test('OUTRIGGER_KUBERNETES in every pod, whether or not it mounts the ServiceAccount token', async (t) => {
  // The pod cannot tell: its ServiceAccount may turn the token off, or the pod may project one itself.
  // The sidecar finds out when it starts, and runs without the watch when there is none (test/kube-no-token).
  const envOf = (spec: Json) => (patched(podOf(spec)).spec.initContainers[0] as { env: Json[] }).env;
  const app = { name: 'app', image: 'app:1' };
  const withoutToken = envOf({ containers: [app], automountServiceAccountToken: false });
  t.same(
    withoutToken.find((variable) => variable.name === 'OUTRIGGER_KUBERNETES'),
    { name: 'OUTRIGGER_KUBERNETES', value: 'true' },
    'automountServiceAccountToken: false',
  );
  t.same(withoutToken, envOf({ containers: [app] }), 'the same environment as a pod with the token');
  t.same(withoutToken, envOf({ containers: [app], automountServiceAccountToken: true }));
});

t.test('pods the sidecar cannot join as they are', async (t) => {
  const conflicts = (spec: Json) => injectionConflicts(PodSchema.parse(podOf(spec)));
  const app = { name: 'app', image: 'app:1' };
  t.same(conflicts({ containers: [app] }), []);
  // One conflict each (t.match alone takes an array as a prefix).
  const only = (found: string[], pattern: RegExp) => {
    t.equal(found.length, 1, `one conflict: ${found.join('; ')}`);
    t.match(found[0], pattern);
  };
  only(conflicts({ containers: [app], hostNetwork: true }), /hostNetwork/);
  only(conflicts({ containers: [{ name: 'outrigger', image: 'x' }] }), /already has a container named "outrigger"/);
  only(
    conflicts({ containers: [app], volumes: [{ name: 'outrigger-tmp', emptyDir: {} }] }),
    /already has a volume named "outrigger-tmp"/,
  );
  const warnings = portWarnings(
    PodSchema.parse(podOf({ containers: [{ ...app, ports: [{ containerPort: 8080 }, { containerPort: 9464 }] }] })),
    config,
  );
  t.same(warnings, ['container "app" declares port 9464, which the sidecar listens on']);
});
