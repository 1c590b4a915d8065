// The egress proxy for outbound calls, from the sidecar's environment as Go's
// net/http (and so Dapr) and curl read it, once at startup: HTTPS_PROXY for
// https:// targets, HTTP_PROXY for http:// ones (the upper-case name wins over
// the lower-case one), NO_PROXY for the hosts reached directly (no-proxy.ts).
// Only an http:// proxy is supported; anything else is a configuration error
// naming the variable, never its value (it may hold the proxy's password).
import { NoProxy } from './no-proxy.ts';

export interface EgressProxy {
  host: string;
  port: number;
  /** `host:port`: what the metadata shows (never the credentials). */
  address: string;
  /** `Basic ...`, from the URL's user and password. */
  authorization: string | undefined;
}

const EXPECTED = 'expected http://[user:password@]host[:port]';

/** Every variable read here: tests and benchmarks, whose upstreams are on loopback, run without them. */
export const PROXY_VARIABLES = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'];

export class EgressProxies {
  private readonly https: EgressProxy | undefined;
  private readonly http: EgressProxy | undefined;
  private readonly noProxy: NoProxy;

  private constructor(https: EgressProxy | undefined, http: EgressProxy | undefined, noProxy: NoProxy) {
    this.https = https;
    this.http = http;
    this.noProxy = noProxy;
  }

  /** The proxies the environment sets, or what is wrong with them (one line per variable). */
  static fromEnv(env: NodeJS.ProcessEnv): { proxies: EgressProxies; problems?: never } | { problems: string[] } {
    const problems: string[] = [];
    const read = (upper: string, lower: string) => {
      const name = env[upper] ? upper : env[lower] ? lower : undefined;
      if (name === undefined) return undefined;
      const parsed = proxyOf(env[name] ?? '');
      if (typeof parsed === 'string') problems.push(`${name}: ${parsed}`);
      return typeof parsed === 'string' ? undefined : parsed;
    };
    const https = read('HTTPS_PROXY', 'https_proxy');
    const http = read('HTTP_PROXY', 'http_proxy');
    if (problems.length > 0) return { problems };
    return { proxies: new EgressProxies(https, http, new NoProxy(env.NO_PROXY || env.no_proxy)) };
  }

  /** The proxy calls to this base URL go through, or undefined when they go direct. */
  for(base: URL): EgressProxy | undefined {
    const proxy = base.protocol === 'https:' ? this.https : base.protocol === 'http:' ? this.http : undefined;
    if (proxy === undefined) return undefined;
    const port = Number(base.port || (base.protocol === 'https:' ? 443 : 80));
    return this.noProxy.bypasses(base.hostname, port) ? undefined : proxy;
  }
}

/** The proxy a variable names, or why it cannot be used (without echoing the value). */
function proxyOf(value: string): EgressProxy | string {
  let url: URL;
  try {
    // Without `scheme://` (`proxy.corp:3128`, `user:password@10.0.0.1:3128`), http:// is meant, as Go and curl read it.
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
  } catch {
    return `not a URL; ${EXPECTED}`;
  }
  if (url.protocol !== 'http:') return `the scheme ${url.protocol}// is not supported; ${EXPECTED}`;
  // An http: URL always has a host (new URL throws without one) and a path, `/` at least.
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    return `a path, query or fragment is not allowed; ${EXPECTED}`;
  }
  let authorization: string | undefined;
  if (url.username !== '' || url.password !== '') {
    try {
      const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
    } catch {
      return `the user or password is not valid percent-encoding; ${EXPECTED}`;
    }
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port || 80);
  return { host, port, address: `${url.hostname}:${port}`, authorization };
}
