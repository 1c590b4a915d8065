// The app id a pod gets when it has no outrigger.dev/app-id annotation: the
// name of what runs it, so every replica of a Deployment shares one id (and
// so one subscription group) without anyone writing it down.
import type { Pod } from './pod.ts';

export interface DerivedAppId {
  appId: string;
  /** Where it came from, for the message when it is not a valid id. */
  source: string;
}

export function deriveAppId(metadata: Pod['metadata']): DerivedAppId | undefined {
  const owners = metadata.ownerReferences ?? [];
  const owner = owners.find((reference) => reference.controller === true) ?? owners[0];
  if (owner !== undefined) {
    // A Deployment's ReplicaSet is named "<deployment>-<pod-template-hash>"; the hash changes with every rollout.
    const hash = metadata.labels?.['pod-template-hash'];
    if (owner.kind === 'ReplicaSet' && hash !== undefined && hash !== '' && owner.name.endsWith(`-${hash}`)) {
      return { appId: owner.name.slice(0, -(hash.length + 1)), source: `the Deployment of ReplicaSet ${owner.name}` };
    }
    return { appId: owner.name, source: `the owner ${owner.kind} ${owner.name}` };
  }
  if (metadata.generateName !== undefined && metadata.generateName !== '') {
    return { appId: metadata.generateName.replace(/-+$/, ''), source: `generateName "${metadata.generateName}"` };
  }
  if (metadata.name !== undefined && metadata.name !== '') {
    return { appId: metadata.name, source: `the pod name "${metadata.name}"` };
  }
  return undefined;
}
