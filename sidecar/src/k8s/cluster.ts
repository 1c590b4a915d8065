// Where the sidecar finds the API server and which namespace it watches: a
// ServiceAccount token inside a pod, or KUBECONFIG outside one (tests, a
// laptop; api/connection.ts says in which order); the namespace from the
// configuration, else the pod's own, else the kubeconfig context's. An
// injected pod without a ServiceAccount token runs without the watch.
import { readFileSync } from 'node:fs';
import { ConfigError, type LoadedConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { KubeClient } from './api/client.ts';
import { findConnection, hasCredentials } from './api/connection.ts';
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

/** The readiness check of the watch (ResourceSync), or of why there is none (NO_TOKEN). */
export const KUBERNETES_CHECK = 'kubernetes';

/** Why an injected sidecar runs without the watch; the `kubernetes` readiness check says it. */
export const NO_TOKEN =
  'not watching: OUTRIGGER_KUBERNETES is true, but the sidecar has no ServiceAccount token ' +
  '(automountServiceAccountToken: false, or a token projected into other containers only) and there is no kubeconfig';

/**
 * NO_TOKEN when the watch is on only because OUTRIGGER_KUBERNETES says so (the
 * injector sets it in every pod), in a pod (KUBERNETES_SERVICE_HOST is set)
 * that has no ServiceAccount token and no kubeconfig: the sidecar then runs
 * without the watch, as docs/injector.md promises. Undefined otherwise: the
 * watch starts, or connectCluster says why it cannot (exit 2). A file that
 * says `kubernetes.watch: true` asks for the watch itself and stays strict.
 */
export function watchWithoutToken(
  { config, fromEnv }: Pick<LoadedConfig, 'config' | 'fromEnv'>,
  env: NodeJS.ProcessEnv = process.env,
  serviceAccount: ServiceAccountFiles = SERVICE_ACCOUNT,
): string | undefined {
  const watch = fromEnv.get('kubernetes.watch');
  if (!config.kubernetes.watch || watch === undefined || watch.fileValue === true || !env.KUBERNETES_SERVICE_HOST) {
    return undefined;
  }
  return hasCredentials(env, serviceAccount) ? undefined : NO_TOKEN;
}
