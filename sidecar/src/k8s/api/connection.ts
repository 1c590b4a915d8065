// How to reach the API server: its URL, the TLS to speak and the credentials
// to show. Found as kubectl and client-go find it, in this order: KUBECONFIG,
// else ~/.kube/config if it exists, else the pod's ServiceAccount (tests and a
// laptop use the first two, a pod the last). Everything that goes wrong here
// is a ConfigError, reported at startup before anything listens.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ConfigError } from '../../config/load.ts';
import { fromKubeconfig } from './kubeconfig.ts';
import { fromServiceAccount, SERVICE_ACCOUNT, type ServiceAccountFiles } from './service-account.ts';
import type { TokenSource } from './token-source.ts';

export interface TlsOptions {
  /** PEM; without it, Node's own root certificates. */
  ca?: string;
  /** The client certificate and its key (PEM), for client-certificate authentication. */
  cert?: string;
  key?: string;
  /** false only for a kubeconfig's insecure-skip-tls-verify. */
  rejectUnauthorized: boolean;
  /** The name the server's certificate is checked against, when not the host of `server` (tls-server-name). */
  servername?: string;
}

export interface Connection {
  /** e.g. https://10.96.0.1:443; a path (an API server behind a proxy) prefixes every request. */
  server: URL;
  tls: TlsOptions;
  /** The bearer token, if the credentials are one. */
  token?: TokenSource;
  /** The kubeconfig context's namespace (in a pod the ServiceAccount's namespace file says it). */
  namespace?: string;
}

export const NO_CLUSTER =
  'kubernetes.watch: no cluster to watch: run inside a pod (with a ServiceAccount token) or set KUBECONFIG';

/** Throws a ConfigError naming what is missing or not supported. */
export function findConnection(
  env: NodeJS.ProcessEnv,
  serviceAccount: ServiceAccountFiles = SERVICE_ACCOUNT,
): Connection {
  const file = kubeconfigFile(env);
  if (file !== undefined) return fromKubeconfig(file);
  if (existsSync(serviceAccount.token)) return fromServiceAccount(env, serviceAccount);
  throw new ConfigError([NO_CLUSTER]);
}

/** Whether findConnection has anything to try (a kubeconfig, the pod's token), without reading it. */
export function hasCredentials(env: NodeJS.ProcessEnv, serviceAccount: ServiceAccountFiles = SERVICE_ACCOUNT): boolean {
  return kubeconfigFile(env) !== undefined || existsSync(serviceAccount.token);
}

function kubeconfigFile(env: NodeJS.ProcessEnv): string | undefined {
  // kubectl merges every file of the list; the sidecar needs one context, so the first file is enough.
  const listed = env.KUBECONFIG?.split(delimiter).find((path) => path !== '');
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  return listed ?? (existsSync(home) ? home : undefined);
}
