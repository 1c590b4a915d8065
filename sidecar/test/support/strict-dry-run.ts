// Server-side dry-run with strict field validation against a test control
// plane: an unknown or misspelt field is an error, where helm install and
// client-node's typed clients only warn or drop it.
import { request } from 'node:https';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { ControlPlane } from './kube.ts';

/** A request as the cluster admin (client certificate); the HTTP status and body. */
export function asAdmin(kube: ControlPlane, method: string, path: string, body?: object) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      `${kube.server}${path}`,
      {
        method,
        ca: kube.caPem,
        cert: kube.adminCert,
        key: kube.adminKey,
        headers: { 'content-type': 'application/json' },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

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
