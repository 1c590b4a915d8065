// {METHOD} /v1/outbound/{target}/{path...}: the ambassador (API.md, "Outbound
// calls"). Its own plugin context, whose one content-type parser hands the
// body over untouched, so request bodies stream to the target instead of
// being parsed; answers stream back as they come.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Outbound } from '../outbound/outbound.ts';
import { ProblemError } from './problems.ts';

const PREFIX = '/v1/outbound/';
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
    const answer = await client.call({
      method: request.method,
      path: checked.path,
      headers: request.headers,
      request: request.raw,
      signal: gone.signal,
    });
    response.off('close', onClose);
    if (response.destroyed) {
      answer.body.destroy();
      answer.end();
      return reply;
    }
    response.once('close', () => {
      if (!answer.body.readableEnded) answer.body.destroy();
      answer.end();
    });
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  };

  const schema = {
    summary: 'Call a configured target through the sidecar: its policies apply and its secret headers are added',
    tags: ['outbound'],
  };
  app.route({ method: METHODS, url: '/v1/outbound/:target', exposeHeadRoute: false, schema, handler: forward });
  app.route({ method: METHODS, url: '/v1/outbound/:target/*', exposeHeadRoute: false, schema, handler: forward });
};
