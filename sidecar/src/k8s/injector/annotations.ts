// The pod's outrigger.dev/* annotations, read into the settings of its
// sidecar. A bad value is a problem that names the annotation (the review is
// refused), never silently ignored; an unknown outrigger.dev/ key is a warning,
// since it is most likely a typo.
import { DNS_LABEL_PATTERN, port } from '../../config/fields.ts';
import { typed } from '../../config/load.ts';
import { LOG_LEVELS } from '../../config/schema.ts';
import { deriveAppId } from './app-id.ts';
import { DNS_SUBDOMAIN, type InjectorConfig, isSecretKey, type Resources, SECRET_KEY_RULE } from './injector-config.ts';
import type { Pod } from './pod.ts';
import { isQuantity, QUANTITY_HINT, requestsOverLimits } from './quantity.ts';
import { readVolumeMounts, type VolumeMount } from './volume-mounts.ts';

export const ANNOTATIONS = {
  inject: 'outrigger.dev/inject',
  injected: 'outrigger.dev/injected',
  appId: 'outrigger.dev/app-id',
  appPort: 'outrigger.dev/app-port',
  logLevel: 'outrigger.dev/log-level',
  config: 'outrigger.dev/config',
  cpuRequest: 'outrigger.dev/cpu-request',
  cpuLimit: 'outrigger.dev/cpu-limit',
  memoryRequest: 'outrigger.dev/memory-request',
  memoryLimit: 'outrigger.dev/memory-limit',
  volumeMounts: 'outrigger.dev/volume-mounts',
  outboxUrlSecret: 'outrigger.dev/outbox-url-secret',
} as const;

const KNOWN = new Set<string>(Object.values(ANNOTATIONS));
// outrigger.dev/app-port read as the sidecar reads OUTRIGGER_APP_PORT, checked as its app.port; made once,
// not per review (building it was most of a review's reading of the annotations).
const APP_PORT = port();

export type LogLevel = (typeof LOG_LEVELS)[number];

export interface InjectionSettings {
  appId: string;
  appPort?: number;
  logLevel: LogLevel;
  /** A ConfigMap in the pod's namespace whose key outrigger.yaml is the sidecar's configuration file. */
  configMap?: string;
  resources: Resources;
  /** Volumes of the pod mounted read-only into the sidecar. */
  volumeMounts?: VolumeMount[];
  /** The Secret (in the pod's namespace) and its key whose value is the sidecar's OUTRIGGER_OUTBOX_URL. */
  outboxUrlSecret?: SecretKeyRef;
}

export interface SecretKeyRef {
  name: string;
  key: string;
}

export type SettingsResult =
  | {
      settings: InjectionSettings;
      warnings: string[];
      /** Where the app id came from (the annotation, or which rule derived it from what), for the log line. */
      appIdSource: string;
    }
  | { problems: string[] };

export function readSettings(pod: Pod, config: InjectorConfig): SettingsResult {
  const annotations = pod.metadata.annotations ?? {};
  const problems: string[] = [];
  const bad = (annotation: string, expected: string) =>
    problems.push(`${annotation}: ${JSON.stringify(annotations[annotation])} is not valid: ${expected}`);

  let appId = annotations[ANNOTATIONS.appId];
  let appIdSource: string = ANNOTATIONS.appId;
  if (appId !== undefined) {
    if (!DNS_LABEL_PATTERN.test(appId)) bad(ANNOTATIONS.appId, DNS_LABEL_HINT);
  } else {
    const derived = deriveAppId(pod.metadata);
    appId = derived?.appId;
    if (derived !== undefined) appIdSource = derived.source;
    if (derived === undefined || !DNS_LABEL_PATTERN.test(derived.appId)) {
      const from = derived === undefined ? 'the pod has no name or owner' : `"${derived.appId}" from ${derived.source}`;
      problems.push(
        `${ANNOTATIONS.appId}: cannot derive an app id (${from} is not a DNS label); set ${ANNOTATIONS.appId}`,
      );
    }
  }

  let appPort: number | undefined;
  const portText = annotations[ANNOTATIONS.appPort];
  if (portText !== undefined) {
    const parsed = APP_PORT.safeParse(typed(portText, 'integer'));
    if (!parsed.success) bad(ANNOTATIONS.appPort, parsed.error.issues[0]?.message as string);
    else if (parsed.data === config.httpPort || parsed.data === config.opsPort) {
      bad(ANNOTATIONS.appPort, `the sidecar listens on ${config.httpPort} and ${config.opsPort} in the pod`);
    } else appPort = parsed.data;
  }

  const logLevel = annotations[ANNOTATIONS.logLevel] ?? config.logLevel;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    bad(ANNOTATIONS.logLevel, `expected one of ${LOG_LEVELS.join(', ')}`);
  }

  const configMap = annotations[ANNOTATIONS.config];
  if (configMap !== undefined && !DNS_SUBDOMAIN.test(configMap)) {
    bad(ANNOTATIONS.config, "expected the name of a ConfigMap in the pod's namespace");
  }

  const resources = readResources(annotations, config.resources, bad, problems);

  const mountsText = annotations[ANNOTATIONS.volumeMounts];
  const volumeMounts =
    mountsText === undefined ? undefined : readVolumeMounts(ANNOTATIONS.volumeMounts, mountsText, pod);
  problems.push(...(volumeMounts?.problems ?? []));

  const outboxText = annotations[ANNOTATIONS.outboxUrlSecret];
  const outbox = outboxText === undefined ? undefined : readSecretKeyRef(outboxText);
  if (outbox !== undefined && 'problems' in outbox) {
    for (const problem of outbox.problems) bad(ANNOTATIONS.outboxUrlSecret, problem);
  }

  if (problems.length > 0) return { problems };
  const warnings = Object.keys(annotations)
    .filter((key) => key.startsWith('outrigger.dev/') && !KNOWN.has(key))
    .map((key) => `unknown annotation ${key} is ignored (known: ${[...KNOWN].join(', ')})`);
  const settings: InjectionSettings = { appId: appId as string, logLevel: logLevel as LogLevel, resources };
  if (appPort !== undefined) settings.appPort = appPort;
  if (configMap !== undefined) settings.configMap = configMap;
  if (volumeMounts !== undefined) settings.volumeMounts = volumeMounts.mounts;
  if (outbox !== undefined && !('problems' in outbox)) settings.outboxUrlSecret = outbox;
  return { settings, warnings, appIdSource };
}

/**
 * SECRET:KEY, as in outrigger.dev/outbox-url-secret: a Secret of the pod's namespace (no "namespace/": the
 * kubelet reads a secretKeyRef in the pod's own) and one of its keys. Every problem with it, or the reference.
 */
function readSecretKeyRef(value: string): SecretKeyRef | { problems: string[] } {
  const parts = value.split(':');
  if (parts.length !== 2) {
    return { problems: ["expected SECRET:KEY, a Secret in the pod's namespace and the key holding the URL"] };
  }
  const [name, key] = parts as [string, string];
  const problems: string[] = [];
  if (!DNS_SUBDOMAIN.test(name)) {
    const namespaced = name.includes('/') ? `; the Secret is the pod's namespace's, named without a namespace` : '';
    problems.push(
      `the Secret name ${JSON.stringify(name)} is not a DNS subdomain (lowercase letters, digits, "-" and ".")${namespaced}`,
    );
  }
  if (!isSecretKey(key)) problems.push(`the key ${JSON.stringify(key)} is not a Secret key: ${SECRET_KEY_RULE}`);
  return problems.length > 0 ? { problems } : { name, key };
}

const DNS_LABEL_HINT =
  'expected a DNS label: 1-63 lowercase letters, digits and "-", starting and ending with a letter or digit';

const RESOURCE_ANNOTATIONS = [
  { annotation: ANNOTATIONS.cpuRequest, kind: 'requests', name: 'cpu' },
  { annotation: ANNOTATIONS.cpuLimit, kind: 'limits', name: 'cpu' },
  { annotation: ANNOTATIONS.memoryRequest, kind: 'requests', name: 'memory' },
  { annotation: ANNOTATIONS.memoryLimit, kind: 'limits', name: 'memory' },
] as const;

/** The configured resources with the annotations' amounts over them; a request above its limit is a problem. */
function readResources(
  annotations: Record<string, string>,
  defaults: Resources,
  bad: (annotation: string, expected: string) => void,
  problems: string[],
): Resources {
  const resources: Resources = { requests: { ...defaults.requests }, limits: { ...defaults.limits } };
  const origin = new Map<string, string>();
  for (const { annotation, kind, name } of RESOURCE_ANNOTATIONS) {
    const value = annotations[annotation];
    if (value === undefined) continue;
    if (!isQuantity(value)) {
      bad(annotation, QUANTITY_HINT);
      continue;
    }
    (resources[kind] as Record<string, string>)[name] = value;
    origin.set(`${kind}.${name}`, annotation);
  }
  for (const { name, request, limit } of requestsOverLimits(resources)) {
    const describe = (key: string, value: string) => `${value} (${origin.get(key) ?? "the injector's default"})`;
    // The configured defaults were checked at startup, so at least one side is an annotation.
    const named = origin.get(`requests.${name}`) ?? origin.get(`limits.${name}`) ?? 'resources';
    problems.push(
      `${named}: the ${name} request ${describe(`requests.${name}`, request)} is more than ` +
        `the ${name} limit ${describe(`limits.${name}`, limit)}`,
    );
  }
  for (const kind of ['requests', 'limits'] as const) {
    if (Object.keys(resources[kind] ?? {}).length === 0) delete resources[kind];
  }
  return resources;
}
