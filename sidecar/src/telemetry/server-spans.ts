// A SERVER span for every app-API request, continuing the caller's
// `traceparent`, active while the route's handler runs (so a publish's
// `send` span and an outbound call's attempts are its children, and log
// lines carry its ids). Installed before the routes; nothing when tracing is off.
import { context, propagation, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { VERSION } from '../version.ts';
import { tracingActive } from './tracing.ts';

export function installServerSpans(app: FastifyInstance): void {
  if (!tracingActive()) return;
  const tracer = trace.getTracer('outrigger', VERSION);
  const spans = new WeakMap<FastifyRequest, Span>();

  app.addHook('onRequest', async (request) => {
    const parent = propagation.extract(context.active(), request.headers);
    const route = request.routeOptions.url;
    const span = tracer.startSpan(
      route === undefined ? request.method : `${request.method} ${route}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': request.method,
          'url.path': request.url.split('?', 1)[0],
          'url.scheme': 'http',
          'server.port': request.socket.localPort,
          'client.address': request.ip,
          ...(route === undefined ? {} : { 'http.route': route }),
          ...(request.headers['user-agent'] === undefined
            ? {}
            : { 'user_agent.original': request.headers['user-agent'] }),
        },
      },
      parent,
    );
    spans.set(request, span);
  });

  app.addHook('onRoute', (route) => {
    const handler = route.handler;
    route.handler = function traced(this: FastifyInstance, request, reply) {
      const span = spans.get(request);
      if (span === undefined) return handler.call(this, request, reply);
      return context.with(trace.setSpan(context.active(), span), () => handler.call(this, request, reply));
    };
  });

  app.addHook('onResponse', async (request, reply) => {
    const span = spans.get(request);
    if (span === undefined) return;
    span.setAttribute('http.response.status_code', reply.statusCode);
    if (reply.statusCode >= 500) {
      span.setAttribute('error.type', String(reply.statusCode));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  });
}
