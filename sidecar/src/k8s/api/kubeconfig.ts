// Outside a pod: a kubeconfig file, read as kubectl reads it but only as far as
// the sidecar needs: the current context's cluster (server, certificate
// authority, insecure-skip-tls-verify, tls-server-name), its user (token,
// tokenFile, client certificate and key, each as a file or inline data) and its
// namespace. Relative file paths are relative to the kubeconfig's directory.
// Credential plugins (exec, auth-provider), username/password, impersonation
// and proxy-url would each need code the sidecar does not carry: a kubeconfig
// using one is refused by name rather than half-understood.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { ConfigError } from '../../config/load.ts';
import type { Connection, TlsOptions } from './connection.ts';
import { FileToken, StaticToken, type TokenSource } from './token-source.ts';

type Fields = Record<string, unknown>;

const UNSUPPORTED_USER_FIELDS: Record<string, string> = {
  exec: 'exec (a credential plugin)',
  'auth-provider': 'auth-provider (a credential plugin)',
  username: 'username and password',
  password: 'username and password',
  as: 'impersonation (as)',
  'as-uid': 'impersonation (as-uid)',
  'as-groups': 'impersonation (as-groups)',
  'as-user-extra': 'impersonation (as-user-extra)',
};
const UNSUPPORTED_CLUSTER_FIELDS: Record<string, string> = { 'proxy-url': 'proxy-url' };
const SUPPORTED_USER = 'a token, a tokenFile or a client certificate (client-certificate and client-key)';

const asFields = (value: unknown): Fields | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : undefined;

/** Reads one kubeconfig file; throws a ConfigError naming the file and what is wrong with it. */
export function fromKubeconfig(path: string): Connection {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError([`kubernetes.watch: cannot load a kubeconfig (${(error as Error).message})`]);
  }
  return new KubeconfigReader(path, text).connection();
}

class KubeconfigReader {
  private readonly path: string;
  private readonly text: string;
  /** Where relative paths inside the file start from. */
  private readonly dir: string;

  constructor(path: string, text: string) {
    this.path = path;
    this.text = text;
    this.dir = dirname(resolve(path));
  }

  private fail(detail: string): ConfigError {
    return new ConfigError([`kubernetes.watch: cannot load a kubeconfig (${this.path}: ${detail})`]);
  }

  connection(): Connection {
    let document: Fields | undefined;
    try {
      document = asFields(parse(this.text));
    } catch (error) {
      throw this.fail((error as Error).message.split('\n')[0] ?? 'not YAML');
    }
    if (document === undefined) throw this.fail('not a kubeconfig (expected a mapping)');
    const contextName = this.string(document, 'current-context', 'the file');
    if (contextName === undefined || contextName === '') throw this.fail('no current-context');
    const context = this.entry(document, 'contexts', 'context', contextName);
    const clusterName = this.string(context, 'cluster', `context "${contextName}"`);
    if (clusterName === undefined) throw this.fail(`context "${contextName}" names no cluster`);
    const cluster = this.entry(document, 'clusters', 'cluster', clusterName);
    const userName = this.string(context, 'user', `context "${contextName}"`);
    // A context without a user talks to the API server anonymously, as kubectl does.
    const user = userName === undefined || userName === '' ? {} : this.entry(document, 'users', 'user', userName);
    const namespace = this.string(context, 'namespace', `context "${contextName}"`);
    const credentials = this.credentials(user, `user "${userName}"`);
    const connection: Connection = {
      server: this.server(cluster, `cluster "${clusterName}"`),
      tls: { ...this.tls(cluster, `cluster "${clusterName}"`), ...credentials.tls },
    };
    if (credentials.token !== undefined) connection.token = credentials.token;
    if (namespace !== undefined && namespace !== '') connection.namespace = namespace;
    return connection;
  }

  /** The `key` fields of the entry of `list` named `name`. */
  private entry(document: Fields, list: string, key: string, name: string): Fields {
    const entries = document[list];
    for (const item of Array.isArray(entries) ? entries : []) {
      const fields = asFields(item);
      if (fields?.name === name) return asFields(fields[key]) ?? {};
    }
    throw this.fail(`no ${key} named "${name}" in ${list}`);
  }

  private string(fields: Fields, key: string, where: string): string | undefined {
    const value = fields[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') throw this.fail(`${where}: ${key} must be a string`);
    return value;
  }

  private server(cluster: Fields, where: string): URL {
    for (const [field, what] of Object.entries(UNSUPPORTED_CLUSTER_FIELDS)) {
      if (cluster[field] !== undefined) throw this.fail(`${where} uses ${what}, which the sidecar does not support`);
    }
    const server = this.string(cluster, 'server', where);
    if (server === undefined || server === '') throw this.fail(`${where} has no server`);
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      throw this.fail(`${where}: server "${server}" is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw this.fail(`${where}: server "${server}" is neither https:// nor http://`);
    }
    return url;
  }

  private tls(cluster: Fields, where: string): TlsOptions {
    const insecure = cluster['insecure-skip-tls-verify'];
    if (insecure !== undefined && typeof insecure !== 'boolean') {
      throw this.fail(`${where}: insecure-skip-tls-verify must be true or false`);
    }
    const tls: TlsOptions = { rejectUnauthorized: insecure !== true };
    const ca = this.pem(cluster, 'certificate-authority', where);
    if (ca !== undefined) tls.ca = ca;
    const servername = this.string(cluster, 'tls-server-name', where);
    if (servername !== undefined && servername !== '') tls.servername = servername;
    return tls;
  }

  private credentials(user: Fields, where: string): { token?: TokenSource; tls: Partial<TlsOptions> } {
    for (const [field, what] of Object.entries(UNSUPPORTED_USER_FIELDS)) {
      if (user[field] !== undefined) {
        throw this.fail(`${where} uses ${what}, which the sidecar does not support; give it ${SUPPORTED_USER}`);
      }
    }
    const tls: Partial<TlsOptions> = {};
    const cert = this.pem(user, 'client-certificate', where);
    const key = this.pem(user, 'client-key', where);
    if ((cert === undefined) !== (key === undefined)) {
      throw this.fail(`${where}: client-certificate and client-key go together; only one is given`);
    }
    if (cert !== undefined && key !== undefined) Object.assign(tls, { cert, key });
    // As in client-go, an inline token wins over a token file.
    const token = this.string(user, 'token', where);
    if (token !== undefined && token !== '') return { token: new StaticToken(token), tls };
    const tokenFile = this.string(user, 'tokenFile', where);
    if (tokenFile === undefined || tokenFile === '') return { tls };
    try {
      return { token: new FileToken(resolve(this.dir, tokenFile)), tls };
    } catch (error) {
      throw this.fail(`${where}: tokenFile: ${(error as Error).message}`);
    }
  }

  /** `field` as PEM text: from `field-data` (base64, wins as in client-go) or the file `field` names. */
  private pem(fields: Fields, field: string, where: string): string | undefined {
    const data = this.string(fields, `${field}-data`, where);
    if (data !== undefined && data !== '') return Buffer.from(data, 'base64').toString('utf8');
    const file = this.string(fields, field, where);
    if (file === undefined || file === '') return undefined;
    try {
      return readFileSync(resolve(this.dir, file), 'utf8');
    } catch (error) {
      throw this.fail(`${where}: ${field}: ${(error as Error).message}`);
    }
  }
}
