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
