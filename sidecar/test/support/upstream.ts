// A real upstream for outbound tests: a node:http server on 127.0.0.1 that
// notes every request as it arrives (before its body) and answers with the
// test's handler. Bodies are not buffered unless the handler reads them.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import { Pool } from 'undici';
import { isConfigError, parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import type { TargetInput } from '../../src/config/target.ts';
import { Sidecar } from '../../src/sidecar.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { BROKER_URL, startInProcess } from './in-process.ts';
import { testEnv } from './sidecar-process.ts';

export interface Hit {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  at: number;
}

export type UpstreamHandler = (request: IncomingMessage, response: ServerResponse, hit: Hit) => void;

export interface Upstream {
  port: number;
  hits: Hit[];
  handle(handler: UpstreamHandler): void;
}

/** Reads a request's body in full (for small bodies). */
export async function bodyOf(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Answers `status` with a short text body, after reading the request's body. */
export const reply =
  (status: number, headers: Record<string, string> = {}, body = `upstream says ${status}`): UpstreamHandler =>
  (request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(status, { 'content-type': 'text/plain', ...headers }).end(body));
  };

export async function startUpstream(t: Test, handler: UpstreamHandler = reply(200)): Promise<Upstream> {
  let current = handler;
  const hits: Hit[] = [];
  const server = createServer((request, response) => {
    const hit = { method: request.method ?? '', url: request.url ?? '', headers: request.headers, at: Date.now() };
    hits.push(hit);
    current(request, response, hit);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    handle(next) {
      current = next;
    },
  };
}

/**
 * An upstream that answers nothing until the test ends a held response (`held.shift()?.end(...)`): every request, or
 * with `other`, those to /hold only, `other` answering the rest. `closed` lists the responses (held or not) whose
 * connection closed before they finished; the held ones left are destroyed when the test ends.
 */
export async function startHoldingUpstream(
  t: Test,
  other?: UpstreamHandler,
): Promise<{ upstream: Upstream; held: ServerResponse[]; closed: ServerResponse[] }> {
  const held: ServerResponse[] = [];
  const closed: ServerResponse[] = [];
  const upstream = await startUpstream(t, (request, response, hit) => {
    response.on('close', () => {
      if (!response.writableFinished) closed.push(response);
    });
    if (other !== undefined && request.url !== '/hold') return other(request, response, hit);
    request.resume();
    held.push(response);
  });
  t.teardown(() => {
    for (const response of held) response.destroy();
  });
  return { upstream, held, closed };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => Record<string, unknown>;
}

/** A client for the sidecar's app API that sends paths exactly as given (no URL normalisation). */
export function apiClient(t: Test, api: string) {
  const pool = new Pool(api, { connections: 16 });
  t.teardown(() => pool.close());
  return async (
    path: string,
    {
      method = 'GET',
      headers = {},
      body,
    }: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
  ): Promise<Answer> => {
    const response = await pool.request({ path, method: method as 'GET', headers, body });
    const text = await response.body.text();
    return {
      status: response.statusCode,
      headers: response.headers,
      text,
      json: () => JSON.parse(text) as Record<string, unknown>,
    };
  };
}

/** A target's circuit as GET /v1/metadata shows it: `name`'s, or the first target's. */
export async function circuitOf(call: ReturnType<typeof apiClient>, name?: string): Promise<string | undefined> {
  const targets = (await call('/v1/metadata')).json().targets as { name: string; circuit: string }[];
  return (name === undefined ? targets[0] : targets.find((target) => target.name === name))?.circuit;
}

/**
 * A sidecar in this process with these outbound targets (no broker needed), and a client of its app API; `options`
 * (a logger, the environment) go to startInProcess.
 */
export async function sidecarWith(
  t: Test,
  targets: TargetInput[],
  extra: Partial<ConfigInput> = {},
  options: Parameters<typeof startInProcess>[2] = {},
) {
  const { api, ops, sidecar } = await startInProcess(
    t,
    { appId: 'outbound', targets, ...extra },
    { waitForBroker: false, ...options },
  );
  return { api, ops, sidecar, call: apiClient(t, api) };
}

/** The problems that stop a sidecar with this configuration and environment at startup: none, if it starts. */
export function configProblems(
  input: Partial<ConfigInput> & { appId: string },
  env: NodeJS.ProcessEnv = testEnv(),
): Promise<string[]> {
  return Sidecar.create(parseConfig({ broker: { url: BROKER_URL }, ...input }), {
    logger: createLogger('silent'),
    env,
  }).then(
    async (sidecar) => {
      await sidecar.stop();
      return [];
    },
    (error: unknown) => (isConfigError(error) ? error.problems : Promise.reject(error)),
  );
}
