// Inside a pod: the API server is the `kubernetes` Service, which the kubelet
// announces in KUBERNETES_SERVICE_HOST and _PORT, and the credentials are the
// ServiceAccount's projected token, signed by the cluster CA mounted beside it.
// The files' directory can be moved (tests; nothing in a pod moves it).
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { ConfigError } from '../../config/load.ts';
import type { Connection } from './connection.ts';
import { FileToken } from './token-source.ts';

export interface ServiceAccountFiles {
  token: string;
  ca: string;
  namespace: string;
}

export function serviceAccountFiles(dir: string): ServiceAccountFiles {
  return { token: `${dir}/token`, ca: `${dir}/ca.crt`, namespace: `${dir}/namespace` };
}

/** Where Kubernetes mounts the token in each container (its ServiceAccount admission plugin). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
export const SERVICE_ACCOUNT = serviceAccountFiles(SERVICE_ACCOUNT_DIR);

const problem = (detail: string) =>
  new ConfigError([`kubernetes.watch: cannot use the pod's ServiceAccount (${detail})`]);

export function fromServiceAccount(env: NodeJS.ProcessEnv, files: ServiceAccountFiles): Connection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw problem('KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not both set');
  try {
    // A URL needs an IPv6 address in brackets (a dual-stack or IPv6-only cluster's Service address).
    const server = new URL(`https://${isIPv6(host) ? `[${host}]` : host}:${port}`);
    const ca = readFileSync(files.ca, 'utf8');
    return { server, tls: { ca, rejectUnauthorized: true }, token: new FileToken(files.token) };
  } catch (error) {
    throw problem((error as Error).message);
  }
}
