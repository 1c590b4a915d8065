// The sidecar's spans on a message's way: `send {topic}` when it is
// published, `process {topic}` when a subscription takes it, and the push to
// the app inside that, and each attempt of an outbound call. Attributes follow the OpenTelemetry messaging and HTTP
// semantic conventions. The trace context travels in the message's
// `traceparent`/`tracestate` headers, as @opentelemetry/instrumentation-amqplib
// writes them, so traces join with services that use amqplib directly.
import {
  type Attributes,
  type Context,
  context,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { sidecarTracer, tracingActive } from './tracing.ts';

/** How a consumer's span relates to the producer's: one trace (child), or a new trace linked to it. */
export type MessageParent = 'child' | 'link';

/** What a published or delivered message says about itself (OutgoingMessage, InboundMessage). */
export interface MessageFacts {
  topic: string;
  id: string;
  body: Buffer;
  headers: Record<string, string>;
}

/** Whose child a send span is: the active context's (a request's server span), or the trace context in the message's headers (an outbox row's). */
export type SendParent = 'active' | 'headers';

/**
 * A PRODUCER span for one publish, child of `parent`. Its context is written into the message's
 * headers, replacing the app's own trace context. Undefined when tracing is off: the app's headers
 * travel as they are.
 */
export function startSend(message: MessageFacts, parent: SendParent = 'active'): Span | undefined {
  if (!tracingActive()) return undefined;
  const parentContext = parent === 'headers' ? propagation.extract(ROOT_CONTEXT, message.headers) : context.active();
  const span = sidecarTracer().startSpan(
    `send ${message.topic}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: { ...messagingAttributes(message), 'messaging.operation.type': 'send' },
    },
    parentContext,
  );
  // Overwrites the app's traceparent (and tracestate, which the span inherited from it).
  propagation.inject(trace.setSpan(parentContext, span), message.headers);
  return span;
}

/** Where a delivery goes: the subscription's name and its group. */
export interface SubscriptionFacts {
  name: string;
  group: string;
}

/**
 * A CONSUMER span for one delivery of a message to the app: by default a child
 * of the producer's span found in the message's headers (one trace for the
 * whole workflow), or with `link`, the root of a new trace linked to it.
 */
export function startProcess(
  message: MessageFacts & { attempt: number },
  subscription: SubscriptionFacts,
  parent: MessageParent,
): Span | undefined {
  if (!tracingActive()) return undefined;
  const producer = propagation.extract(ROOT_CONTEXT, message.headers);
  const producerSpan = trace.getSpanContext(producer);
  const links: Link[] = parent === 'link' && producerSpan !== undefined ? [{ context: producerSpan }] : [];
  return sidecarTracer().startSpan(
    `process ${message.topic}`,
    {
      kind: SpanKind.CONSUMER,
      links,
      attributes: {
        ...messagingAttributes(message),
        'messaging.operation.type': 'process',
        'messaging.destination.subscription.name': subscription.name,
        'messaging.consumer.group.name': subscription.group,
        'outrigger.attempt': message.attempt,
      },
    },
    parent === 'child' ? producer : ROOT_CONTEXT,
  );
}

/** The server an HTTP CLIENT span names, worked out once per target or app, not per call. */
export interface HttpPeer {
  origin: string;
  address: string;
  port: number;
}

export function httpPeer(origin: string): HttpPeer {
  const url = new URL(origin);
  return {
    origin: url.origin,
    address: url.hostname,
    port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
  };
}

/**
 * A CLIENT span for one HTTP request the sidecar sends (a push to the app, an
 * attempt at an outbound target), child of `parent`; its context is written
 * into `headers`, so the server continues the trace. `resendCount` numbers the
 * retries (absent on a first attempt), as the HTTP conventions ask.
 */
export function startHttpClient(
  parent: Context,
  peer: HttpPeer,
  request: { method: string; path: string; resendCount?: number },
  headers: Record<string, string | string[]>,
): Span {
  const query = request.path.indexOf('?');
  const attributes: Attributes = {
    'http.request.method': request.method,
    'server.address': peer.address,
    'server.port': peer.port,
    'url.full': peer.origin + (query < 0 ? request.path : request.path.slice(0, query)),
  };
  if (request.resendCount !== undefined && request.resendCount > 0) {
    attributes['http.request.resend_count'] = request.resendCount;
  }
  const span = sidecarTracer().startSpan(request.method, { kind: SpanKind.CLIENT, attributes }, parent);
  propagation.inject(trace.setSpan(parent, span), headers);
  return span;
}

/**
 * Ends an HTTP span, CLIENT or SERVER, with the status of the answer (a 5xx
 * marks it failed, `error.type` the status), or with why there was none.
 */
export function endHttpSpan(span: Span, outcome: { status: number } | { errorType: string; message: string }): void {
  if ('status' in outcome) {
    span.setAttribute('http.response.status_code', outcome.status);
    if (outcome.status >= 500) {
      span.setAttribute('error.type', String(outcome.status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  } else {
    span.setAttribute('error.type', outcome.errorType);
    span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.message });
  }
  span.end();
}

/** `headers` with the trace context of `span` instead of their own (unchanged without a span). */
export function traceHeaders(span: Span | undefined, headers: Record<string, string>): Record<string, string> {
  if (span === undefined) return headers;
  const { traceparent: _, tracestate: __, ...rest } = headers;
  propagation.inject(trace.setSpan(context.active(), span), rest);
  return rest;
}

/** Ends a span: `error` (a short reason, no payload) marks it failed. */
export function endSpan(span: Span | undefined, attributes: Attributes = {}, error?: string): void {
  if (span === undefined) return;
  span.setAttributes(attributes);
  if (error !== undefined) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    if (attributes['error.type'] === undefined) span.setAttribute('error.type', 'error');
  }
  span.end();
}

/** Runs `work` with `span` as the active span (so log lines and child spans find it). */
export function withSpan<T>(span: Span | undefined, work: () => T): T {
  if (span === undefined) return work();
  return context.with(trace.setSpan(context.active(), span), work);
}

function messagingAttributes(message: MessageFacts): Attributes {
  return {
    'messaging.system': 'rabbitmq',
    'messaging.destination.name': message.topic,
    'messaging.message.id': message.id,
    'messaging.message.body.size': message.body.length,
  };
}
