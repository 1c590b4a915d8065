// One admission decision: which pods get the sidecar, which are left alone,
// which are refused and why. Pure (no I/O), so every branch is unit-tested.
import { formatPath } from '../../config/load.ts';
import type { AdmissionRequest, AdmissionResponse } from './admission-review.ts';
import { ANNOTATIONS, readSettings } from './annotations.ts';
import type { InjectorConfig } from './injector-config.ts';
import { PodSchema } from './pod.ts';
import { injectionConflicts, isInjected, podPatch, portWarnings } from './pod-patch.ts';

export type AdmissionResult = 'injected' | 'skipped' | 'denied' | 'error';

export interface Decision {
  result: AdmissionResult;
  response: AdmissionResponse;
  /** Why, for the log line. */
  reason: string;
}

/** Never injected, whatever a pod there says: the cluster's own components. */
const EXCLUDED_NAMESPACES = new Set(['kube-system']);

export function decide(request: AdmissionRequest, config: InjectorConfig): Decision {
  const { uid } = request;
  const skip = (reason: string): Decision => ({ result: 'skipped', response: { uid, allowed: true }, reason });
  const refuse = (result: 'denied' | 'error', message: string): Decision => ({
    result,
    response: { uid, allowed: false, status: { code: 400, message } },
    reason: message,
  });

  const { group, version, kind } = request.kind;
  if (group !== '' || version !== 'v1' || kind !== 'Pod') return skip(`not a pod (${kind})`);
  if (request.operation !== 'CREATE') return skip(`operation ${request.operation}`);

  const annotations = (request.object as { metadata?: { annotations?: unknown } } | null)?.metadata?.annotations;
  const inject = (annotations as Record<string, unknown> | null | undefined)?.[ANNOTATIONS.inject];
  if (inject !== 'true') return skip(`no ${ANNOTATIONS.inject}: "true" annotation`);
  if (request.namespace !== undefined && EXCLUDED_NAMESPACES.has(request.namespace)) {
    return skip(`namespace ${request.namespace}`);
  }

  const parsed = PodSchema.safeParse(request.object);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return refuse('error', `request.object is not a valid pod: ${formatPath(issue?.path ?? [])}: ${issue?.message}`);
  }
  const pod = parsed.data;
  // Reinvocation (reinvocationPolicy IfNeeded) and pods that already carry the sidecar: nothing to add.
  if (isInjected(pod)) return skip('already injected');

  const read = readSettings(pod, config);
  if ('problems' in read) return refuse('denied', read.problems.join('; '));
  const conflicts = injectionConflicts(pod);
  if (conflicts.length > 0) return refuse('denied', conflicts.join('; '));

  const patch = Buffer.from(JSON.stringify(podPatch(pod, read.settings, config))).toString('base64');
  const warnings = [...read.warnings, ...portWarnings(pod, config)];
  const response: AdmissionResponse = { uid, allowed: true, patchType: 'JSONPatch', patch };
  if (warnings.length > 0) response.warnings = warnings;
  return { result: 'injected', response, reason: `app id ${read.settings.appId} from ${read.appIdSource}` };
}
