// Where the sidecar finds the API server and which namespace it watches: a
// ServiceAccount token inside a pod, or KUBECONFIG outside one (tests, a
// laptop; api/connection.ts says in which order); the namespace from the
// configuration, else the pod's own, else the kubeconfig context's.
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { KubeClient } from './api/client.ts';
import { findConnection } from './api/connection.ts';
import { SERVICE_ACCOUNT, type ServiceAccountFiles } from './api/service-account.ts';

export interface Cluster {
  api: KubeClient;
  namespace: string;
}

/** Throws a ConfigError when there is no cluster to watch, or no namespace to watch in. */
export function connectCluster(
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
  serviceAccount: ServiceAccountFiles = SERVICE_ACCOUNT,
): Cluster {
  const connection = findConnection(env, serviceAccount);
  const namespace = config.kubernetes.namespace ?? podNamespace(serviceAccount.namespace) ?? connection.namespace;
  if (namespace === undefined) {
    throw new ConfigError(['kubernetes.namespace: required outside a pod (or OUTRIGGER_NAMESPACE)']);
  }
  return { api: new KubeClient(connection), namespace };
}

function podNamespace(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
