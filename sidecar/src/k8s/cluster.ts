// Where the sidecar finds the API server and which namespace it watches: a
// ServiceAccount token inside a pod, or KUBECONFIG outside one (tests, a
// laptop); the namespace from the configuration, else the pod's own.
import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError } from '../config/load.ts';
import type { Config } from '../config/schema.ts';

const POD_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export interface Cluster {
  kubeConfig: KubeConfig;
  namespace: string;
}

export function connectCluster(config: Config, env: NodeJS.ProcessEnv = process.env): Cluster {
  const kubeConfig = new KubeConfig();
  try {
    // KUBECONFIG, else ~/.kube/config, else the pod's ServiceAccount.
    if (env.KUBECONFIG !== undefined && env.KUBECONFIG !== '') kubeConfig.loadFromFile(env.KUBECONFIG);
    else kubeConfig.loadFromDefault();
  } catch (error) {
    throw new ConfigError([`kubernetes.watch: cannot load a kubeconfig (${(error as Error).message})`]);
  }
  if (kubeConfig.getCurrentCluster() === null) {
    throw new ConfigError([
      'kubernetes.watch: no cluster to watch: run inside a pod (with a ServiceAccount token) or set KUBECONFIG',
    ]);
  }
  const namespace =
    config.kubernetes.namespace ?? podNamespace() ?? kubeConfig.getContextObject(kubeConfig.currentContext)?.namespace;
  if (namespace === undefined) {
    throw new ConfigError(['kubernetes.namespace: required outside a pod (or OUTRIGGER_NAMESPACE)']);
  }
  return { kubeConfig, namespace };
}

function podNamespace(): string | undefined {
  try {
    return readFileSync(POD_NAMESPACE_FILE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
