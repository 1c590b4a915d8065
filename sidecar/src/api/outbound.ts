// {METHOD} /v1/outbound/{target}/{path...}: the ambassador (API.md, "Outbound
// calls"). Its own plugin context, whose one content-type parser hands the
// body over untouched, so request bodies stream to the target instead of
// being parsed; answers stream back as they come.
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { CallAborted } from '../outbound/attempt-result.ts';
import { drop } from '../outbound/exchange.ts';
import type { Outbound } from '../outbound/outbound.ts';
import type { OutboundAnswer } from '../outbound/target-client.ts';
import { ProblemError } from './problems.ts';

const PREFIX = '/v1/outbound/';
/** Recorded for a call whose app went away before its answer (nginx's "client closed request"). */
const APP_GONE = 499;
/** TRACE is not forwarded: the target would echo the sidecar's secret headers back to the app. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];

export interface OutboundRouteDeps {
  outbound: Outbound;
}

export const outboundRoutes: FastifyPluginAsync<OutboundRouteDeps> = async (app, { outbound }) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));

  const forward = async (request: FastifyRequest, reply: FastifyReply) => {
    const raw = request.raw.url ?? '';
    const queryAt = raw.indexOf('?');
    const pathPart = queryAt < 0 ? raw : raw.slice(0, queryAt);
    const slash = pathPart.indexOf('/', PREFIX.length);
    const name = pathPart.slice(PREFIX.length, slash < 0 ? undefined : slash);
    const client = outbound.get(name);
    if (client === undefined)
      throw new ProblemError('TARGET_UNKNOWN', `no outbound target named "${name}" is configured`);
    const checked = client.pathFor(
      slash < 0 ? '' : pathPart.slice(slash),
      queryAt < 0 ? undefined : raw.slice(queryAt + 1),
    );
    if (!checked.ok) throw new ProblemError('PATH_INVALID', `${checked.reason}; nothing was sent`);

    const gone = new AbortController();
    const response = reply.raw;
    const onClose = () => {
      if (!response.writableFinished) gone.abort();
    };
    response.once('close', onClose);
    let answer: OutboundAnswer;
    try {
      answer = await client.call({
        method: request.method,
        path: checked.path,
        headers: request.headers,
        request: request.raw,
        signal: gone.signal,
      });
    } catch (error) {
      if (!(error instanceof CallAborted)) throw error;
      // The app went away: no one to answer, nothing to log (the call is counted as `aborted`).
      reply.hijack();
      abandon(response, APP_GONE, error);
      return;
    } finally {
      response.off('close', onClose);
    }
    // From here the answer is written to the socket directly: one write for a whole answer
    // (status line, headers and body together), a stream with backpressure for a large one.
    reply.hijack();
    try {
      await writeAnswer(response, answer);
    } finally {
      answer.end();
    }
  };

  const schema = {
    summary: 'Call a configured target through the sidecar: its policies apply and its secret headers are added',
    tags: ['outbound'],
  };
  app.route({ method: METHODS, url: '/v1/outbound/:target', exposeHeadRoute: false, schema, handler: forward });
  app.route({ method: METHODS, url: '/v1/outbound/:target/*', exposeHeadRoute: false, schema, handler: forward });
};

async function writeAnswer(response: ServerResponse, answer: OutboundAnswer): Promise<void> {
  const { body } = answer;
  if (response.destroyed) {
    drop(body);
    abandon(response, APP_GONE, new CallAborted());
    return;
  }
  response.writeHead(answer.status, answer.headers);
  if (Buffer.isBuffer(body)) {
    response.end(body);
    return;
  }
  // A target failing mid-answer, or the app going away, ends both sides; the status has been sent.
  await pipeline(body, response).catch((error: Error) => abandon(response, APP_GONE, error));
}

/**
 * The answer cannot be completed: the connection is closed. Fastify runs its
 * onResponse hooks (the server span's end, the API request metric) on the
 * response's `finish` or `error` only, and a destroyed response emits
 * neither, so it is told with `error`. `status` is what the metric and the
 * span record when no status line went out.
 */
function abandon(response: ServerResponse, status: number, cause: Error): void {
  if (!response.headersSent) response.statusCode = status;
  response.destroy();
  if (response.listenerCount('error') > 0) response.emit('error', cause);
}
