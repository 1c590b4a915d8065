// The headers of a push (docs/api.md, "Push delivery"): the message's
// CloudEvents attributes in binary mode, its trace context, and where it came from.
import type { InboundMessage } from '../broker/broker.ts';

/** Headers a message carries to the app: CloudEvents attributes and trace context, nothing else a producer set. */
const FORWARDED = /^(ce-[a-z0-9]+|traceparent|tracestate)$/;
/** A value undici sends unchanged. */
const VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** One character a header value cannot carry (a control character, or beyond Latin-1). */
const UNSENDABLE = /[^\t\x20-\x7e\x80-\xff]/gu;

export function pushHeaders(message: InboundMessage, subscription: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers)) {
    const lower = name.toLowerCase();
    if (!FORWARDED.test(lower)) continue;
    headers[lower] = sendable(value);
  }
  // A content-type no header can carry (a batch entry's, or another producer's) would fail every attempt.
  const contentType = message.contentType;
  headers['content-type'] =
    contentType !== undefined && contentType !== '' && VALUE.test(contentType)
      ? contentType
      : 'application/octet-stream';
  headers['ce-specversion'] = '1.0';
  headers['ce-id'] = sendable(message.id);
  headers['ce-type'] ??= message.topic;
  headers['ce-source'] ??= `/outrigger/topics/${message.topic}`;
  if (message.publishedAt !== undefined) headers['ce-time'] ??= message.publishedAt.toISOString();
  headers['outrigger-topic'] = message.topic;
  headers['outrigger-subscription'] = subscription;
  headers['outrigger-attempt'] = String(message.attempt);
  return headers;
}

/**
 * The value as a header can carry it: unchanged when it can, otherwise with
 * each character it cannot carry percent-encoded as UTF-8 (the CloudEvents
 * HTTP binding's encoding). Without this, a message id or attribute with a
 * newline or an emoji (possible in a batch publish, or from another producer)
 * made undici refuse every attempt, and the app never saw the message.
 */
function sendable(value: string): string {
  if (VALUE.test(value)) return value;
  return value.replace(UNSENDABLE, (character) =>
    [...Buffer.from(character, 'utf8')].map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}
