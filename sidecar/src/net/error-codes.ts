// The codes with which Node's sockets and undici say that a request got no
// (whole) answer, sorted by what went wrong. Matched on these stable codes,
// never on messages: by outbound attempts (outbound/attempt-result.ts) and by
// the Kubernetes status writer (k8s/status-writer.ts), which retry on them.

/** No connection: refused, no such host, unreachable, or no connection within the connect timeout. */
export const CONNECT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** The connection reset or closed before the answer, or before its end. */
export const RESET_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

/** No answer, or no more of it, within the timeout. */
export const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);
