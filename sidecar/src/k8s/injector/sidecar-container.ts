// The container the injector adds: a native sidecar (an init container with
// restartPolicy Always, Kubernetes 1.29+) that starts before the app's init
// containers and stops after the app, locked down (non-root, read-only root
// filesystem, no capabilities) with a small writable /tmp.
import { SERVICE_ACCOUNT_DIR } from '../api/service-account.ts';
import type { InjectionSettings } from './annotations.ts';
import type { InjectorConfig } from './injector-config.ts';

export const SIDECAR_NAME = 'outrigger';
const TMP_DIR = '/tmp';
const CONFIG_DIR = '/etc/outrigger';
const CONFIG_KEY = 'outrigger.yaml';
export const VOLUMES = { tmp: 'outrigger-tmp', config: 'outrigger-config' } as const;
/**
 * The sidecar's own mount paths, which a volume of outrigger.dev/volume-mounts may not be mounted on, in or
 * over. The config path is kept free even without outrigger.dev/config. The token's directory too: the
 * ServiceAccount admission plugin leaves out the token in a container that mounts something at its path.
 */
export const OWN_MOUNT_PATHS: readonly { path: string; what: string }[] = [
  { path: TMP_DIR, what: 'its writable /tmp' },
  { path: CONFIG_DIR, what: 'its configuration file, from outrigger.dev/config' },
  { path: SERVICE_ACCOUNT_DIR, what: 'its ServiceAccount token' },
];
/**
 * Paths of the image and of the kubelet that a volume of outrigger.dev/volume-mounts may not be mounted on, in
 * or over either: the pod would be admitted, and its sidecar would not start. The runtime follows the image's
 * links to place a mount, and volume-mounts.ts compares paths after them (IMAGE_LINKS): /bin, /sbin, /lib,
 * /lib64 ... lead into /usr, and /run/secrets is refused as over the token's directory /var/run/secrets/... (in a
 * read-only volume there, the runtime could not make the place of the token the API server adds).
 */
export const RESERVED_PATHS: readonly { path: string; what: string }[] = [
  { path: '/app', what: "the sidecar's program (the image's working directory)" },
  { path: '/usr', what: 'node and the libraries it needs' },
  { path: '/dev', what: "the container's devices and the kubelet's /dev/termination-log" },
  { path: '/proc', what: "the kernel's process files" },
  { path: '/sys', what: "the kernel's sysfs" },
  { path: '/etc/hosts', what: 'written by the kubelet' },
  { path: '/etc/hostname', what: 'written by the kubelet' },
  { path: '/etc/resolv.conf', what: "written by the kubelet (the pod's DNS)" },
];
/**
 * Prefixed: Services and probes that name a port take a native sidecar's port of that name before the app's,
 * so a plain "http" here would send an app's `targetPort: http` traffic to the sidecar.
 */
const PORT_NAMES = { http: 'outrigger-http', ops: 'outrigger-ops' } as const;

/** Variables the injector sets on the sidecar; the config's extra env may not override them. */
export const INJECTED_ENV = [
  'OUTRIGGER_APP_ID',
  'OUTRIGGER_APP_PORT',
  'OUTRIGGER_LOG_LEVEL',
  'OUTRIGGER_HTTP_PORT',
  'OUTRIGGER_OPS_PORT',
  'OUTRIGGER_KUBERNETES',
  'OUTRIGGER_NAMESPACE',
  'OUTRIGGER_POD_NAME',
  'OUTRIGGER_BROKER_URL',
  'OUTRIGGER_OUTBOX_URL',
] as const;

type EnvVar = { name: string; value: string } | { name: string; valueFrom: Record<string, unknown> };

export function sidecarContainer(settings: InjectionSettings, config: InjectorConfig): Record<string, unknown> {
  const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path, port: PORT_NAMES.ops, scheme: 'HTTP' },
    periodSeconds,
    failureThreshold,
    timeoutSeconds: 2,
  });
  return {
    name: SIDECAR_NAME,
    image: config.image,
    imagePullPolicy: config.imagePullPolicy,
    restartPolicy: 'Always',
    args: settings.configMap === undefined ? ['sidecar'] : ['sidecar', '--config', `${CONFIG_DIR}/${CONFIG_KEY}`],
    // The app API binds to loopback: the port is declared for readers, never published (no hostPort).
    ports: [
      { name: PORT_NAMES.http, containerPort: config.httpPort, protocol: 'TCP' },
      { name: PORT_NAMES.ops, containerPort: config.opsPort, protocol: 'TCP' },
    ],
    env: sidecarEnv(settings, config),
    resources: settings.resources,
    // Started = listening: the app containers start then. Readiness also waits for the broker and the app's
    // health, which a startup probe must not, since the app only starts after it succeeds.
    startupProbe: probe('/healthz', 1, 60),
    readinessProbe: probe('/readyz', 5, 3),
    livenessProbe: probe('/healthz', 10, 3),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 65532,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: VOLUMES.tmp, mountPath: TMP_DIR },
      ...(settings.configMap === undefined ? [] : [{ name: VOLUMES.config, mountPath: CONFIG_DIR, readOnly: true }]),
      // The pod's own volumes (outrigger.dev/volume-mounts), never writable: files for secret headers and TLS.
      ...(settings.volumeMounts ?? []).map(({ volume, path }) => ({ name: volume, mountPath: path, readOnly: true })),
    ],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

function sidecarEnv(settings: InjectionSettings, config: InjectorConfig): EnvVar[] {
  const fieldRef = (fieldPath: string) => ({ fieldRef: { apiVersion: 'v1', fieldPath } });
  const env: EnvVar[] = [{ name: 'OUTRIGGER_APP_ID', value: settings.appId }];
  if (settings.appPort !== undefined) env.push({ name: 'OUTRIGGER_APP_PORT', value: String(settings.appPort) });
  env.push(
    { name: 'OUTRIGGER_LOG_LEVEL', value: settings.logLevel },
    { name: 'OUTRIGGER_HTTP_PORT', value: String(config.httpPort) },
    { name: 'OUTRIGGER_OPS_PORT', value: String(config.opsPort) },
    // In every pod: whether it has a ServiceAccount token only shows in the running container (the
    // ServiceAccount's own automount setting is not in the pod), where the sidecar does without the watch
    // when there is none (k8s/cluster.ts, watchWithoutToken).
    { name: 'OUTRIGGER_KUBERNETES', value: 'true' },
    { name: 'OUTRIGGER_NAMESPACE', valueFrom: fieldRef('metadata.namespace') },
    // The trace resource's k8s.pod.name (telemetry/tracing-sdk.ts): which replica made a span.
    { name: 'OUTRIGGER_POD_NAME', valueFrom: fieldRef('metadata.name') },
  );
  const secret = config.brokerUrlSecret;
  if (secret !== undefined) {
    // optional: a pod in a namespace without the Secret still starts (and reports not ready), rather than hanging.
    env.push({ name: 'OUTRIGGER_BROKER_URL', valueFrom: { secretKeyRef: { ...secret, optional: true } } });
  }
  const outbox = settings.outboxUrlSecret;
  if (outbox !== undefined) {
    // Not optional: the pod asked for its relay, and without the Secret (or its key) the sidecar would start
    // without one, ready, while the app's rows pile up unpublished. The kubelet holds the sidecar, and so the
    // app, in CreateContainerConfigError instead, naming the Secret, and starts it once the Secret is there.
    env.push({ name: 'OUTRIGGER_OUTBOX_URL', valueFrom: { secretKeyRef: { ...outbox, optional: false } } });
  }
  return [...env, ...config.env];
}

export function sidecarVolumes(settings: InjectionSettings): Record<string, unknown>[] {
  const volumes: Record<string, unknown>[] = [{ name: VOLUMES.tmp, emptyDir: { sizeLimit: '64Mi' } }];
  if (settings.configMap !== undefined) {
    volumes.push({
      name: VOLUMES.config,
      configMap: { name: settings.configMap, items: [{ key: CONFIG_KEY, path: CONFIG_KEY }] },
    });
  }
  return volumes;
}
