// A SERVER span for every app-API request, continuing the caller's
// `traceparent`, active while the route's handler runs (so a publish's
// `send` span and an outbound call's attempts are its children, and log
// lines carry its ids). Installed before the routes; nothing when tracing is off.
import { context, propagation, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { VERSION } from '../version.ts';
import { tracingActive } from './tracing.ts';

export function installServerSpans(app: FastifyInstance): void {
  if (!tracingActive()) return;
  const tracer = trace.getTracer('outrigger', VERSION);
  const spans = new WeakMap<FastifyRequest, Span>();

  // Callback hooks, not async ones: no promise per request on the hottest path.
  app.addHook('onRequest', (request, _reply, done) => {
    const route = request.routeOptions.url;
    const span = tracer.startSpan(
      route === undefined ? request.method : `${request.method} ${route}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': request.method,
          'url.path': pathOf(request.url),
          ...(route === undefined ? {} : { 'http.route': route }),
        },
      },
      propagation.extract(ROOT_CONTEXT, request.headers),
    );
    spans.set(request, span);
    done();
  });

  app.addHook('onRoute', (route) => {
    const handler = route.handler;
    route.handler = function traced(this: FastifyInstance, request, reply) {
      const span = spans.get(request);
      if (span === undefined) return handler.call(this, request, reply);
      return context.with(trace.setSpan(context.active(), span), () => handler.call(this, request, reply));
    };
  });

  app.addHook('onResponse', (request, reply, done) => {
    const span = spans.get(request);
    if (span !== undefined) {
      span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) {
        span.setAttribute('error.type', String(reply.statusCode));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    }
    done();
  });
}

function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
