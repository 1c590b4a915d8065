// Server-side dry-run with strict field validation against a test control
// plane: an unknown or misspelt field is an error, where helm install and
// client-node's typed clients only warn or drop it.
import type { KubernetesObject } from '@kubernetes/client-node';
import { asAdmin } from './admin-request.ts';
import type { ControlPlane } from './kube.ts';

/**
 * Creates the object with dryRun=All and fieldValidation=Strict, so an unknown
 * or misspelt field is an error (helm itself only logs a warning for those).
 */
export async function strictDryRun(kube: ControlPlane, object: KubernetesObject) {
  const base = `${object.apiVersion?.includes('/') ? '/apis' : '/api'}/${object.apiVersion}`;
  const discovery = await asAdmin(kube, 'GET', base);
  const resources = (
    JSON.parse(discovery.body) as { resources?: { name: string; kind: string; namespaced: boolean }[] }
  ).resources;
  const resource = resources?.find((r) => r.kind === object.kind && !r.name.includes('/'));
  if (!resource) throw new Error(`the API server does not serve ${object.apiVersion} ${object.kind}`);
  const namespace = resource.namespaced ? `/namespaces/${object.metadata?.namespace ?? 'default'}` : '';
  return asAdmin(kube, 'POST', `${base}${namespace}/${resource.name}?dryRun=All&fieldValidation=Strict`, object);
}
