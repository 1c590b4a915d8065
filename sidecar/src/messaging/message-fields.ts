// What a published message may carry besides its body, wherever it comes
// from: the publish API or the outbox table.

/** CloudEvents binary-mode attributes (and trace context) kept as message headers; any other header is not. */
export const KEPT_HEADERS: readonly string[] = [
  'ce-type',
  'ce-source',
  'ce-subject',
  'ce-time',
  'ce-specversion',
  'ce-dataschema',
  'traceparent',
  'tracestate',
];

/** The longest message id (idempotency key, ce-id, outbox row id). */
export const MAX_ID_LENGTH = 200;

/** AMQP's short strings (message id, content type) hold at most 255 bytes: more and the client cannot encode the message. */
export const MAX_SHORT_STRING_BYTES = 255;

/** Whether `text` fits an AMQP short string. */
export const fitsShortString = (text: string): boolean => Buffer.byteLength(text) <= MAX_SHORT_STRING_BYTES;
