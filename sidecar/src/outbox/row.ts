// An outbox row as the message it asks for, or why it can never be one (the
// relay parks such a row rather than retrying it forever). The same rules as
// the publish API: topic names, id lengths, the headers kept, the longest delay.
import type { OutgoingMessage } from '../broker/broker.ts';
import { topic } from '../config/fields.ts';
import { fitsShortString, KEPT_HEADERS, MAX_ID_LENGTH, MAX_SHORT_STRING_BYTES } from '../messaging/message-fields.ts';
import type { OutboxRow } from './table.ts';

const TopicName = topic();

export type RowMessage = { message: OutgoingMessage } | { problem: string };

export function messageOf(row: OutboxRow, maxDelayMs: number): RowMessage {
  const checked = TopicName.safeParse(row.topic);
  if (!checked.success) {
    return { problem: `topic ${JSON.stringify(row.topic)}: ${checked.error.issues[0]?.message}` };
  }
  const id = row.id;
  if (id === null || id.length === 0 || id.length > MAX_ID_LENGTH || !fitsShortString(id)) {
    return { problem: `id: expected 1-${MAX_ID_LENGTH} characters, at most ${MAX_SHORT_STRING_BYTES} bytes` };
  }
  if (row.payload === null) return { problem: 'payload: required' };
  if (row.content_type !== null && !fitsShortString(row.content_type)) {
    return { problem: `content_type: at most ${MAX_SHORT_STRING_BYTES} bytes` };
  }
  const headers = keptHeaders(row.headers);
  if (typeof headers === 'string') return { problem: headers };
  const delayMs = row.delay_ms ?? 0;
  if (delayMs > maxDelayMs) {
    return {
      problem: `deliver_at: later than the ${Math.floor(maxDelayMs / 86_400_000)} days the broker can hold a message`,
    };
  }
  return {
    message: {
      topic: checked.data,
      body: row.payload,
      id,
      contentType: row.content_type ?? undefined,
      headers,
      delayMs: delayMs > 0 ? Math.ceil(delayMs) : undefined,
    },
  };
}

/** The row's headers the message carries (as the publish API keeps them), or what is wrong with them. */
function keptHeaders(value: unknown): Record<string, string> | string {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) return 'headers: expected a JSON object';
  const kept: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const header = (value as Record<string, unknown>)[name];
    if (header === undefined) continue;
    if (typeof header !== 'string') return `headers.${name}: expected a string`;
    kept[name] = header;
  }
  return kept;
}
