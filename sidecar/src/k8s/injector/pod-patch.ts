// The JSON Patch (RFC 6902) that injects the sidecar: only `add` operations,
// each on the smallest path, so fields this webhook does not own (and other
// webhooks' changes) are left as they are.
import { VERSION } from '../../version.ts';
import { ANNOTATIONS, type InjectionSettings } from './annotations.ts';
import type { InjectorConfig } from './injector-config.ts';
import type { Pod } from './pod.ts';
import { SIDECAR_NAME, sidecarContainer, sidecarVolumes, VOLUMES } from './sidecar-container.ts';

export interface PatchOperation {
  op: 'add';
  path: string;
  value: unknown;
}

/** RFC 6901: "~" and "/" inside a key. */
const pointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

export const isInjected = (pod: Pod): boolean =>
  (pod.spec.initContainers ?? []).some((container) => container.name === SIDECAR_NAME);

/** Why the sidecar cannot be added to this pod as it is; empty when it can. */
export function injectionConflicts(pod: Pod): string[] {
  const problems: string[] = [];
  if (pod.spec.hostNetwork === true) {
    problems.push(
      `${ANNOTATIONS.inject}: the pod uses hostNetwork; the sidecar's API on 127.0.0.1 would be open to the whole node`,
    );
  }
  if (pod.spec.containers.some((container) => container.name === SIDECAR_NAME)) {
    problems.push(`${ANNOTATIONS.inject}: the pod already has a container named "${SIDECAR_NAME}"`);
  }
  for (const volume of pod.spec.volumes ?? []) {
    if ((Object.values(VOLUMES) as string[]).includes(volume.name)) {
      problems.push(`${ANNOTATIONS.inject}: the pod already has a volume named "${volume.name}"`);
    }
  }
  return problems;
}

export function podPatch(pod: Pod, settings: InjectionSettings, config: InjectorConfig): PatchOperation[] {
  const patch: PatchOperation[] = [];
  const add = (path: string, value: unknown) => patch.push({ op: 'add', path, value });

  if (pod.metadata.annotations === undefined) add('/metadata/annotations', { [ANNOTATIONS.injected]: VERSION });
  else add(`/metadata/annotations/${pointer(ANNOTATIONS.injected)}`, VERSION);

  // First, so it is running before the app's own init containers, which may publish through it.
  const sidecar = sidecarContainer(settings, config);
  if (pod.spec.initContainers === undefined) add('/spec/initContainers', [sidecar]);
  else add('/spec/initContainers/0', sidecar);

  const volumes = sidecarVolumes(settings);
  if (pod.spec.volumes === undefined) add('/spec/volumes', volumes);
  else for (const volume of volumes) add('/spec/volumes/-', volume);

  const url = { name: 'OUTRIGGER_URL', value: `http://127.0.0.1:${config.httpPort}` };
  pod.spec.containers.forEach((container, index) => {
    if (container.env === undefined) add(`/spec/containers/${index}/env`, [url]);
    else if (!container.env.some((variable) => variable.name === url.name)) add(`/spec/containers/${index}/env/-`, url);
  });
  return patch;
}

/** App containers that declare one of the sidecar's ports: allowed (a declared port is informational), but said. */
export function portWarnings(pod: Pod, config: InjectorConfig): string[] {
  return pod.spec.containers.flatMap((container) =>
    (container.ports ?? [])
      .filter((port) => port.containerPort === config.httpPort || port.containerPort === config.opsPort)
      .map((port) => `container "${container.name}" declares port ${port.containerPort}, which the sidecar listens on`),
  );
}
