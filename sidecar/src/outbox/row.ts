// An outbox row as the message it asks for, or why it can never be one (the
// relay parks such a row rather than retrying it forever). The same rules as
// the publish API: topic names, id lengths, the headers kept, the longest delay.
import type { OutgoingMessage } from '../broker/broker.ts';
import { topic } from '../config/fields.ts';
import { KEPT_HEADERS, MAX_ID_LENGTH } from '../messaging/message-fields.ts';
import type { OutboxRow } from './table.ts';

const TopicName = topic();

export type RowMessage = { message: OutgoingMessage } | { problem: string };

export function messageOf(row: OutboxRow, maxDelayMs: number, now = Date.now()): RowMessage {
  const checked = TopicName.safeParse(row.topic);
  if (!checked.success) {
    return { problem: `topic ${JSON.stringify(row.topic)}: ${checked.error.issues[0]?.message}` };
  }
  const id = row.id;
  if (id === null || id.length === 0 || id.length > MAX_ID_LENGTH) {
    return { problem: `id: expected 1-${MAX_ID_LENGTH} characters` };
  }
  if (row.payload === null) return { problem: 'payload: required' };
  const headers = keptHeaders(row.headers);
  if (typeof headers === 'string') return { problem: headers };
  let delayMs: number | undefined;
  if (row.deliver_at !== null) {
    const ms = row.deliver_at.getTime() - now;
    if (Number.isNaN(ms)) return { problem: 'deliver_at: not a time' };
    if (ms > maxDelayMs) {
      return {
        problem: `deliver_at: later than the ${Math.floor(maxDelayMs / 86_400_000)} days the broker can hold a message`,
      };
    }
    if (ms > 0) delayMs = ms;
  }
  return {
    message: {
      topic: checked.data,
      body: row.payload,
      id,
      contentType: row.content_type ?? undefined,
      headers,
      delayMs,
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
