// The headers of a push (docs/api.md, "Push delivery"): the message's
// CloudEvents attributes in binary mode, its trace context, and where it came from.
import type { InboundMessage } from '../broker/broker.ts';

/** Headers a message carries to the app: CloudEvents attributes and trace context, nothing else a producer set. */
const FORWARDED = /^(ce-[a-z0-9]+|traceparent|tracestate)$/;
/** A value undici sends unchanged. */
const VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export function pushHeaders(message: InboundMessage, subscription: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers)) {
    const lower = name.toLowerCase();
    if (!FORWARDED.test(lower) || !VALUE.test(value)) continue;
    headers[lower] = value;
  }
  headers['content-type'] = message.contentType ?? 'application/octet-stream';
  headers['ce-specversion'] = '1.0';
  headers['ce-id'] = message.id;
  headers['ce-type'] ??= message.topic;
  headers['ce-source'] ??= `/outrigger/topics/${message.topic}`;
  if (message.publishedAt !== undefined) headers['ce-time'] ??= message.publishedAt.toISOString();
  headers['outrigger-topic'] = message.topic;
  headers['outrigger-subscription'] = subscription;
  headers['outrigger-attempt'] = String(message.attempt);
  return headers;
}
