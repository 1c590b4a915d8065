// What one attempt at a target came to: an answer (any status), or a failure
// of a kind that `retry.on` can name. Errors are matched on their stable
// codes (Node's and undici's), never on messages.
import type { IncomingHttpHeaders } from 'node:http';
import { CONNECT_CODES, RESET_CODES, TIMEOUT_CODES } from '../net/error-codes.ts';
import type { AnswerBody } from './exchange.ts';
import { TunnelFailed } from './proxy-tunnel.ts';

export type FailureKind = 'connect-error' | 'reset' | 'timeout' | 'aborted' | 'error';

/** The target's answer, of any status: whole, or streaming as it arrives. */
export interface UpstreamAnswer {
  kind: 'answer';
  status: number;
  headers: IncomingHttpHeaders;
  body: AnswerBody;
}

export type AttemptResult =
  | UpstreamAnswer
  | {
      kind: 'failure';
      failure: FailureKind;
      code: string;
      /** The egress proxy's status, when it refused the CONNECT tunnel (ERR_PROXY_TUNNEL_REFUSED). */
      proxyStatus?: number;
    };

/**
 * An attempt the call's deadline cut short (target-client.ts send()): a timeout by its metrics and the answer's
 * code. The breaker counts it when the target's own `deadline` cut it, not when the app's shorter
 * outrigger-timeout did (the caller's budget was short; the target may be fine).
 */
export const DEADLINE_PASSED: Readonly<AttemptResult & { kind: 'failure' }> = Object.freeze({
  kind: 'failure',
  failure: 'timeout',
  code: 'OUTRIGGER_DEADLINE',
});

/** The app went away (closed its connection) before its call was answered: there is no one to answer. */
export class CallAborted extends Error {
  constructor() {
    super('the app went away before its call was answered');
    this.name = 'CallAborted';
  }
}

const CONNECT = new Set([
  ...CONNECT_CODES,
  // The egress proxy's CONNECT (proxy-tunnel.ts) not answered as a tunnel, or refused with a 5xx
  // (the proxy could not reach the target). A 4xx refusal is the proxy's policy: see failureOf().
  'ERR_PROXY_TUNNEL_REFUSED',
  'ERR_PROXY_TUNNEL_INVALID',
]);
/** OpenSSL's verification codes that name neither a CERT nor a CRL (Node passes them on as error codes). */
const TLS_VERIFY = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
]);
/** TLS failed: mostly its handshake (the target's certificate not trusted, or ours refused). */
const isTls = (code: string) =>
  TLS_VERIFY.has(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|CRL/.test(code);
const ABORTED = new Set(['UND_ERR_ABORTED', 'ABORT_ERR']);

export function failureOf(error: unknown): AttemptResult & { kind: 'failure' } {
  const code = String((error as { code?: unknown }).code ?? (error as { name?: unknown }).name ?? 'error');
  if (error instanceof TunnelFailed && error.status !== undefined) {
    // A 4xx (407 credentials, 403 policy) would be the same on a retry, and says nothing of the target's health,
    // as a 4xx answer would not: neither retried by default nor counted by the breaker (isBreakerFailure).
    const failure = error.status < 500 ? 'error' : failureKind(code);
    return { kind: 'failure', failure, code, proxyStatus: error.status };
  }
  return { kind: 'failure', failure: failureKind(code), code };
}

function failureKind(code: string): FailureKind {
  if (CONNECT.has(code) || isTls(code)) return 'connect-error';
  if (RESET_CODES.has(code)) return 'reset';
  if (TIMEOUT_CODES.has(code)) return 'timeout';
  if (ABORTED.has(code) || code === 'AbortError') return 'aborted';
  return 'error';
}

/** The outcome label of outrigger_outbound_attempts_total. */
export const outcomeOf = (result: AttemptResult): string =>
  result.kind === 'answer' ? `${Math.floor(result.status / 100)}xx` : result.failure.replace('-', '_');

/**
 * What the breaker counts as a failure: a 5xx, or no answer at all, but not a proxy's 4xx refusal. An attempt the
 * app cut short (it hung up, or its outrigger-timeout passed) reaches the breaker only as a half-open trial's
 * outcome (target-client.ts send() passes the others on uncounted): a trial that came to nothing keeps the circuit
 * open rather than closing it. One cut by the target's own `deadline` comes as a timeout, and counts.
 */
export const isBreakerFailure = (result: AttemptResult): boolean =>
  result.kind === 'failure' ? !(result.proxyStatus !== undefined && result.proxyStatus < 500) : result.status >= 500;

/** What the app is told when the last attempt had no answer (not DEADLINE_PASSED: the call names its deadline). */
export function describeFailure(result: AttemptResult & { kind: 'failure' }, timeoutMs: number): string {
  if (result.proxyStatus !== undefined) return `the proxy refused the tunnel (${result.proxyStatus})`;
  switch (result.failure) {
    case 'timeout':
      return `no answer within ${timeoutMs} ms`;
    case 'connect-error':
      return isTls(result.code) ? `TLS failed (${result.code})` : `could not connect (${result.code})`;
    case 'reset':
      return `the connection was reset or closed (${result.code})`;
    default:
      return `the call failed (${result.code})`;
  }
}
