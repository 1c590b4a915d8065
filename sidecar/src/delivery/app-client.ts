// The sidecar's HTTP client to the app: one kept-alive undici pool for every
// push and health check, sized to the subscriptions' concurrency.
import { type Dispatcher, Pool } from 'undici';
import type { CheckResult } from '../health/readiness.ts';
import { type HttpPeer, httpPeer } from '../telemetry/spans.ts';
import { parseRetryAfter } from './backoff.ts';
import type { PushResult } from './outcome.ts';

export interface AppClientOptions {
  host: string;
  port: number;
  /** Connections kept to the app at most (the sum of the push subscriptions' concurrency); no bound when undefined. */
  connections: number | undefined;
  /** Sent as `outrigger-app-token` on every call, when set. */
  appToken?: string | undefined;
}

export interface PushRequest {
  path: string;
  body: Buffer;
  headers: Record<string, string>;
  timeoutMs: number;
  /** Aborts the push (the grace period of a shutdown ran out). */
  signal?: AbortSignal | undefined;
}

/** How much of an error answer's body travels with the message as its last error. */
const MAX_DETAIL_BYTES = 300;
/** A health answer's body is read to its end, up to this; one that runs longer (or never ends) fails the check. */
const MAX_HEALTH_BODY_BYTES = 1024 * 1024;

export class AppClient {
  private readonly pool: Pool;
  private readonly appToken: string | undefined;
  /** The app, as push spans name it. */
  readonly peer: HttpPeer;

  constructor(options: AppClientOptions) {
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    const origin = `http://${host}:${options.port}`;
    this.peer = httpPeer(origin);
    this.appToken = options.appToken;
    this.pool = new Pool(origin, {
      connections: options.connections === undefined ? null : Math.max(1, options.connections),
      keepAliveTimeout: 30_000,
      pipelining: 1,
    });
  }

  /** POSTs one message to the app; never throws. */
  async push(request: PushRequest): Promise<PushResult> {
    const headers =
      this.appToken === undefined ? request.headers : { ...request.headers, 'outrigger-app-token': this.appToken };
    try {
      // undici's own timers rather than an AbortSignal per push: a signal lives until its timer fires
      // (30 s by default), which under load held hundreds of MB and caused long GC pauses.
      const response = await this.pool.request({
        method: 'POST',
        path: request.path,
        headers,
        body: request.body,
        headersTimeout: request.timeoutMs,
        bodyTimeout: request.timeoutMs,
        signal: request.signal,
      });
      const { statusCode } = response;
      let detail: string | undefined;
      if (statusCode >= 300) detail = await readSome(response.body, MAX_DETAIL_BYTES);
      else await response.body.dump();
      return {
        kind: 'answered',
        status: statusCode,
        retryAfterMs: parseRetryAfter(response.headers['retry-after']),
        detail,
      };
    } catch (error) {
      const code = (error as { code?: string }).code;
      const timedOut = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
      return {
        kind: 'failed',
        timedOut,
        error: timedOut ? `no answer from the app within ${request.timeoutMs} ms` : describe(error),
      };
    }
  }

  /**
   * GET `path`: ok for a 2xx whose body ends within `timeoutMs` and MAX_HEALTH_BODY_BYTES; the detail says
   * what the app did ("answered 503"). Never throws.
   */
  async healthy(path: string, timeoutMs: number): Promise<CheckResult> {
    const signal = AbortSignal.timeout(timeoutMs);
    let response: Dispatcher.ResponseData;
    try {
      response = await this.pool.request({
        method: 'GET',
        path,
        headers: this.appToken === undefined ? {} : { 'outrigger-app-token': this.appToken },
        signal,
      });
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      return { ok: false, detail: timedOut ? `did not answer within ${timeoutMs} ms` : `failed: ${describe(error)}` };
    }
    const status = response.statusCode;
    // Read to the end ourselves: body.dump() stops after 128 KiB without an error, and returns when the
    // signal cuts the body short, so a body that never ends passed. It fails here, on the time or the size.
    let size = 0;
    try {
      for await (const chunk of response.body) {
        size += (chunk as Buffer).length;
        if (size > MAX_HEALTH_BODY_BYTES) {
          response.body.destroy();
          return {
            ok: false,
            detail: `answered ${status} but its body ran over ${MAX_HEALTH_BODY_BYTES / 1024 / 1024} MiB`,
          };
        }
      }
    } catch (error) {
      if (signal.aborted) return { ok: false, detail: `answered ${status} but did not finish within ${timeoutMs} ms` };
      return { ok: false, detail: `answered ${status} but its body failed: ${describe(error)}` };
    }
    if (status >= 200 && status < 300) return { ok: true, detail: `answered ${status}` };
    const redirect = status >= 300 && status < 400 ? '; redirects are not followed' : '';
    return { ok: false, detail: `answered ${status} (not 2xx${redirect})` };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

async function readSome(body: AsyncIterable<Buffer> & { dump(): Promise<void> }, limit: number) {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= limit) break;
    }
  } catch {
    // A body cut short still tells what it had.
  }
  await body.dump().catch(() => {});
  const text = Buffer.concat(chunks).subarray(0, limit).toString('utf8').replace(/\s+/g, ' ').trim();
  return text === '' ? undefined : text;
}

function describe(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  return code === undefined ? message : `${code}: ${message}`;
}
