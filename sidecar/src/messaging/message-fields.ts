// What a published message may carry besides its body, wherever it comes
// from: the publish API or the outbox table. Each check says what is wrong,
// or nothing; the caller names the field (and the publish API answers 400).
import { topic } from '../config/fields.ts';

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
const MAX_SHORT_STRING_BYTES = 255;

/** Whether `text` fits an AMQP short string. */
const fitsShortString = (text: string): boolean => Buffer.byteLength(text) <= MAX_SHORT_STRING_BYTES;

const TopicName = topic();

/** What is wrong with a topic name, in the configuration's words. */
export function topicProblem(name: unknown): string | undefined {
  const result = TopicName.safeParse(name);
  return result.success ? undefined : result.error.issues[0]?.message;
}

export function idProblem(id: string): string | undefined {
  return id.length === 0 || id.length > MAX_ID_LENGTH || !fitsShortString(id)
    ? `expected 1-${MAX_ID_LENGTH} characters, at most ${MAX_SHORT_STRING_BYTES} bytes`
    : undefined;
}

export function contentTypeProblem(contentType: string): string | undefined {
  return fitsShortString(contentType) ? undefined : `expected at most ${MAX_SHORT_STRING_BYTES} bytes`;
}

/** The kept headers among `source`'s string values. */
export function keptHeaders(source: Readonly<Record<string, unknown>>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const value = source[name];
    if (typeof value === 'string') kept[name] = value;
  }
  return kept;
}
