// The sidecar's Kubernetes API client: the three calls it makes (get a list,
// JSON-patch a status, watch) over one undici pool, instead of
// @kubernetes/client-node, whose KubeConfig alone loads every generated model
// of the API: +84 MB of RSS and +390 ms at startup in every pod that watches
// (docs/architecture.md). Answers are plain parsed JSON; a failed call throws
// a KubeApiError with the HTTP code and the API server's own message.
import { Pool } from 'undici';
import { VERSION } from '../../version.ts';
import type { Connection } from './connection.ts';
import { KubeApiError } from './errors.ts';
import type { TokenSource } from './token-source.ts';

export type Query = Record<string, string | number | boolean | undefined>;

/** One operation of a JSON patch (RFC 6902). */
export interface JsonPatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: unknown;
  from?: string;
}

/** A watch event. ERROR is not among them: the client throws it as a KubeApiError (the watch ends there). */
export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: T;
}

const WATCH_TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK']);

/** For a get or a patch: the API server answers these in milliseconds, or something is wrong. */
const CALL_TIMEOUT_MS = 30_000;
/** How much later than its timeoutSeconds a silent watch is given up as a dead connection. */
const WATCH_GRACE_MS = 30_000;

export class KubeClient {
  private readonly pool: Pool;
  /** The server URL's path (an API server behind a path-routing proxy), put before every request's path. */
  private readonly basePath: string;
  private readonly token: TokenSource | undefined;

  constructor(connection: Connection) {
    const { server, tls, token } = connection;
    this.pool = new Pool(server.origin, { connect: { ...tls } });
    this.basePath = server.pathname.replace(/\/+$/, '');
    this.token = token;
  }

  async get<T>(path: string, query: Query = {}, signal?: AbortSignal): Promise<T> {
    return this.call<T>('GET', path, query, undefined, signal);
  }

  /** A JSON patch (application/json-patch+json): exact, and needs no schema on the server's side. */
  async patch<T>(path: string, operations: readonly JsonPatchOperation[]): Promise<T> {
    return this.call<T>('PATCH', path, {}, operations);
  }

  /**
   * Watches `path` (watch=true is added here): calls `onEvent` for each event as it
   * arrives and `onOpen` once the API server has accepted the watch. Resolves when
   * the server ends the watch (its timeoutSeconds); rejects with a KubeApiError on
   * a refusal or an ERROR event, with an AbortError when `signal` aborts.
   */
  async watch<T>(
    path: string,
    query: Query,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
    onOpen?: () => void,
  ): Promise<void> {
    const timeoutSeconds = Number(query.timeoutSeconds);
    const answer = await this.pool.request({
      method: 'GET',
      path: this.pathOf(path, { ...query, watch: true }),
      headers: await this.headers(),
      signal,
      headersTimeout: CALL_TIMEOUT_MS,
      // Without a timeoutSeconds a watch may rightly stay silent for as long as it likes.
      bodyTimeout: Number.isFinite(timeoutSeconds) ? timeoutSeconds * 1000 + WATCH_GRACE_MS : 0,
    });
    if (answer.statusCode !== 200) throw KubeApiError.fromAnswer(answer.statusCode, await answer.body.text());
    onOpen?.();
    // One JSON object per line; a chunk may end in the middle of one.
    answer.body.setEncoding('utf8');
    let pending = '';
    for await (const chunk of answer.body as AsyncIterable<string>) {
      pending += chunk;
      let end = pending.indexOf('\n');
      while (end !== -1) {
        dispatch(pending.slice(0, end), onEvent);
        pending = pending.slice(end + 1);
        end = pending.indexOf('\n');
      }
    }
    dispatch(pending, onEvent);
  }

  /** Closes the connections at once (watches should have been aborted by then). */
  async close(): Promise<void> {
    await this.pool.destroy();
  }

  private async call<T>(
    method: 'GET' | 'PATCH',
    path: string,
    query: Query,
    patch?: unknown,
    signal?: AbortSignal,
  ): Promise<T> {
    const headers = await this.headers();
    if (patch !== undefined) headers['content-type'] = 'application/json-patch+json';
    const answer = await this.pool.request({
      method,
      path: this.pathOf(path, query),
      headers,
      body: patch === undefined ? null : JSON.stringify(patch),
      signal: signal ?? null,
      headersTimeout: CALL_TIMEOUT_MS,
      bodyTimeout: CALL_TIMEOUT_MS,
    });
    const text = await answer.body.text();
    if (answer.statusCode < 200 || answer.statusCode > 299) throw KubeApiError.fromAnswer(answer.statusCode, text);
    return JSON.parse(text) as T;
  }

  private async headers(): Promise<Record<string, string>> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': `outrigger-sidecar/${VERSION}`,
    };
    // Asked on every request: a token file is read again once its copy is a minute old (token-source.ts).
    if (this.token !== undefined) headers.authorization = `Bearer ${await this.token.token()}`;
    return headers;
  }

  private pathOf(path: string, query: Query): string {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined) params.set(name, String(value));
    }
    const search = params.toString();
    return `${this.basePath}${path}${search === '' ? '' : `?${search}`}`;
  }
}

function dispatch<T>(line: string, onEvent: (event: WatchEvent<T>) => void): void {
  if (line.trim() === '') return;
  const event = JSON.parse(line) as { type?: string; object?: unknown };
  if (event.type === 'ERROR') {
    const status = (event.object ?? {}) as { code?: number; reason?: string; message?: string };
    throw new KubeApiError(status.code ?? 500, status);
  }
  if (event.type === undefined || !WATCH_TYPES.has(event.type)) return; // a type newer than this code: not ours
  onEvent(event as WatchEvent<T>);
}

/** The path of custom resources of one plural in one namespace, or of one of them (and its subresource). */
export function customResourcePath(
  resource: { group: string; version: string; namespace: string; plural: string },
  name?: string,
  subresource?: 'status',
): string {
  const { group, version, namespace, plural } = resource;
  const base = `/apis/${group}/${version}/namespaces/${encodeURIComponent(namespace)}/${plural}`;
  if (name === undefined) return base;
  return `${base}/${encodeURIComponent(name)}${subresource === undefined ? '' : `/${subresource}`}`;
}
