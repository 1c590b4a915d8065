// A SERVER span for every app-API request, continuing the caller's
// `traceparent`, active while the route's handler runs (so a publish's
// `send` span and an outbound call's attempts are its children, and log
// lines carry its ids). fastify's routes get it from hooks installed before
// them; the outbound proxy (api/outbound.ts), which fastify does not see,
// starts and ends its own with the same functions. Nothing when tracing is off.

import type { IncomingHttpHeaders } from 'node:http';
import { propagation, ROOT_CONTEXT, type Span, SpanKind } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { endHttpSpan, withSpan } from './spans.ts';
import { sidecarTracer, tracingActive } from './tracing.ts';

/** The request's SERVER span (named after its route when it has one), or undefined when tracing is off. */
export function startServerSpan(
  method: string,
  route: string | undefined,
  url: string,
  headers: IncomingHttpHeaders,
): Span | undefined {
  if (!tracingActive()) return undefined;
  return sidecarTracer().startSpan(
    route === undefined ? method : `${method} ${route}`,
    {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': method,
        'url.path': pathOf(url),
        ...(route === undefined ? {} : { 'http.route': route }),
      },
    },
    propagation.extract(ROOT_CONTEXT, headers),
  );
}

export function installServerSpans(app: FastifyInstance): void {
  if (!tracingActive()) return;
  const spans = new WeakMap<FastifyRequest, Span>();

  // Callback hooks, not async ones: no promise per request on the hottest path.
  app.addHook('onRequest', (request, _reply, done) => {
    const span = startServerSpan(request.method, request.routeOptions.url, request.url, request.headers);
    if (span !== undefined) spans.set(request, span);
    done();
  });

  app.addHook('onRoute', (route) => {
    const handler = route.handler;
    route.handler = function traced(this: FastifyInstance, request, reply) {
      return withSpan(spans.get(request), () => handler.call(this, request, reply));
    };
  });

  app.addHook('onResponse', (request, reply, done) => {
    const span = spans.get(request);
    if (span !== undefined) endHttpSpan(span, { status: reply.statusCode });
    done();
  });
}

function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
