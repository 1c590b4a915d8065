// An outbox row as the message it asks for, or why it can never be one (the
// relay parks such a row rather than retrying it forever), by the publish
// API's own checks: topic names, ids, content types, the headers kept, the
// longest delay.
import type { OutgoingMessage } from '../broker/broker.ts';
import { delayProblem } from '../messaging/delay.ts';
import { contentTypeProblem, idProblem, KEPT_HEADERS, keptHeaders, topicProblem } from '../messaging/message-fields.ts';
import type { OutboxRow } from './table.ts';

export type RowMessage = { message: OutgoingMessage } | { problem: string };

export function messageOf(row: OutboxRow, maxDelayMs: number): RowMessage {
  const { topic, id, payload, content_type: contentType } = row;
  const topicWrong = topicProblem(topic);
  if (topicWrong !== undefined || topic === null) return { problem: `topic ${JSON.stringify(topic)}: ${topicWrong}` };
  const idWrong = id === null ? idProblem('') : idProblem(id);
  if (idWrong !== undefined || id === null) return { problem: `id: ${idWrong}` };
  if (payload === null) return { problem: 'payload: required' };
  const typeWrong = contentType === null ? undefined : contentTypeProblem(contentType);
  if (typeWrong !== undefined) return { problem: `content_type: ${typeWrong}` };
  const headersWrong = headersProblem(row.headers);
  if (headersWrong !== undefined) return { problem: headersWrong };
  const delayMs = row.delay_ms ?? 0;
  const delayWrong = delayProblem(delayMs, maxDelayMs);
  if (delayWrong !== undefined) return { problem: `deliver_at: ${delayWrong}` };
  return {
    message: {
      topic,
      body: payload,
      id,
      contentType: contentType ?? undefined,
      headers: keptHeaders((row.headers ?? {}) as Record<string, unknown>),
      delayMs: delayMs > 0 ? Math.ceil(delayMs) : undefined,
    },
  };
}

/** The row's headers: a JSON object, whose kept headers are strings (the others are left out). */
function headersProblem(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) return 'headers: expected a JSON object';
  const wrong = KEPT_HEADERS.find((name) => {
    const header = (value as Record<string, unknown>)[name];
    return header !== undefined && typeof header !== 'string';
  });
  return wrong === undefined ? undefined : `headers.${wrong}: expected a string`;
}
