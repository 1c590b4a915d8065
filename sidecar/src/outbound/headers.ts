// Headers across the ambassador: hop-by-hop headers (RFC 9110 §7.6.1) stop at
// the sidecar both ways, the sidecar's own headers never leave it, and the
// target's configured headers override whatever the app sent.
import type { IncomingHttpHeaders } from 'node:http';

export type HeaderMap = Record<string, string | string[]>;

/** Hop-by-hop in either direction; `proxy-*` is checked by prefix. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
/** Not forwarded to the target: set by the sidecar (host), or handled here (expect: 100-continue). */
const REQUEST_ONLY = new Set(['host', 'expect', 'http2-settings']);
/** The sidecar's own headers (outrigger-api-token and the like) stay with the sidecar. */
const SIDECAR_PREFIX = 'outrigger-';

const isHopByHop = (name: string) => HOP_BY_HOP.has(name) || name.startsWith('proxy-');

/** Header names listed in `connection` are hop-by-hop too (RFC 9110 §7.6.1). */
function connectionListed(value: string | string[] | undefined): Set<string> | undefined {
  // The usual values name no header (keep-alive is hop-by-hop anyway): no Set to build.
  if (value === undefined || value === 'keep-alive' || value === 'close') return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  const names = new Set<string>();
  for (const token of text.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '') names.add(name);
  }
  return names;
}

/** What goes to the target: the app's end-to-end headers, then `host` and the configured headers. */
export function requestHeaders(incoming: IncomingHttpHeaders, host: string, configured: HeaderMap): HeaderMap {
  const listed = connectionListed(incoming.connection);
  const out: HeaderMap = {};
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined || isHopByHop(name) || REQUEST_ONLY.has(name) || name.startsWith(SIDECAR_PREFIX)) continue;
    if (listed?.has(name)) continue;
    out[name] = value;
  }
  out.host = host;
  for (const name in configured) out[name] = configured[name] as string | string[];
  return out;
}

/** What goes back to the app: the target's end-to-end headers. */
export function responseHeaders(upstream: Record<string, string | string[] | undefined>): HeaderMap {
  const listed = connectionListed(upstream.connection);
  const out: HeaderMap = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || isHopByHop(name) || listed?.has(name)) continue;
    out[name] = value;
  }
  return out;
}
