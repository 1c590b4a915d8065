// What the sidecar should run given its file and the resources of its app:
// the file's entries first (they win a name clash), then each resource whose
// spec passes the same schema and the same checks as a file entry. Every
// resource gets a verdict, which becomes its Ready condition.
import type { z } from 'zod';
import { describeIssue } from '../config/load.ts';
import type { Config, Subscription, Target } from '../config/schema.ts';
import { resolveSubscription, subscriptionSetProblems } from '../config/subscription-set.ts';
import type { TargetSource } from '../outbound/outbound.ts';
import type { OutriggerResource } from './resource-watch.ts';
import { OutboundTargetSpecSchema, SubscriptionSpecSchema } from './resources.ts';

export type Reason = 'Applied' | 'InvalidSpec' | 'NameConflict' | 'SecretUnavailable';

export interface Verdict {
  resource: OutriggerResource;
  ready: boolean;
  reason: Reason;
  message: string;
}

const applied = (resource: OutriggerResource): Verdict => ({
  resource,
  ready: true,
  reason: 'Applied',
  message: 'applied by the sidecars of this app',
});
const refused = (resource: OutriggerResource, reason: Reason, message: string): Verdict => ({
  resource,
  ready: false,
  reason,
  message,
});

/** Oldest first, so that of two clashing resources the newer is the one refused, whichever sidecar decides. */
const byAge = (resources: readonly OutriggerResource[]) =>
  [...resources].sort(
    (a, b) =>
      (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') ||
      a.metadata.name.localeCompare(b.metadata.name),
  );

/**
 * The verdict on each resource, oldest first: refused when the file has an entry
 * of its name or its spec fails `schema`; else `accept` takes the parsed spec
 * (without appId, with the resource's name) and returns why not, if it cannot.
 */
function judge<T extends { appId: string }>(
  resources: readonly OutriggerResource[],
  file: { noun: string; names: Set<string> },
  schema: z.ZodType<T>,
  accept: (spec: Omit<T, 'appId'> & { name: string }) => string | undefined,
): Verdict[] {
  return byAge(resources).map((resource) => {
    const name = resource.metadata.name;
    if (file.names.has(name)) {
      return refused(resource, 'NameConflict', `the sidecar's configuration file has a ${file.noun} "${name}"`);
    }
    const result = schema.safeParse(resource.spec ?? {}, { reportInput: true });
    if (!result.success) {
      const problems = result.error.issues.map((issue) => describeIssue({ ...issue, path: ['spec', ...issue.path] }));
      return refused(resource, 'InvalidSpec', problems.join('; '));
    }
    const { appId: _, ...fields } = result.data;
    const problem = accept({ ...fields, name });
    return problem === undefined ? applied(resource) : refused(resource, 'InvalidSpec', problem);
  });
}

export function desiredSubscriptions(
  config: Config,
  resources: readonly OutriggerResource[],
): { subscriptions: Subscription[]; verdicts: Verdict[] } {
  const subscriptions: Subscription[] = [...config.subscriptions];
  const names = new Set(config.subscriptions.map((sub) => sub.name));
  const verdicts = judge(resources, { noun: 'subscription', names }, SubscriptionSpecSchema, (spec) => {
    const candidate = resolveSubscription(spec, config.appId);
    const clash = subscriptionSetProblems([...subscriptions, candidate], {
      appId: config.appId,
      appPort: config.app.port,
    }).find((problem) => problem.index === subscriptions.length);
    if (clash !== undefined) return `spec.${clash.field}: ${clash.message}`;
    subscriptions.push(candidate);
    return undefined;
  });
  return { subscriptions, verdicts };
}

export function desiredTargets(
  config: Config,
  resources: readonly OutriggerResource[],
): { targets: TargetSource[]; verdicts: Verdict[] } {
  const targets: TargetSource[] = config.targets.map((target, index) => ({ target, field: `targets[${index}]` }));
  const names = new Set(config.targets.map((target) => target.name));
  const verdicts = judge(resources, { noun: 'target', names }, OutboundTargetSpecSchema, (spec) => {
    targets.push({ target: spec as Target, field: 'spec' });
    return undefined;
  });
  return { targets, verdicts };
}

/** A target's secrets that this sidecar cannot resolve turn its verdict into SecretUnavailable. */
export function withSecretProblems(verdicts: Verdict[], problems: Map<string, string[]>): Verdict[] {
  return verdicts.map((verdict) => {
    const found = problems.get(verdict.resource.metadata.name);
    if (!verdict.ready || found === undefined) return verdict;
    return refused(verdict.resource, 'SecretUnavailable', found.join('; '));
  });
}
