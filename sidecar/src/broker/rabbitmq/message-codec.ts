// How a message's Outrigger facts travel in AMQP properties and headers, and
// back. Headers starting with `outrigger-` are the sidecar's own; `x-` ones
// are the broker's (x-death from the delay cascade). Neither reaches the app
// as an application header.
import { randomUUID } from 'node:crypto';
import type { Message, MessageProperties } from 'amqplib';
import type { DeadLetter, DeadLetterReason, Failure, InboundMessage } from '../broker.ts';
import type { PublishProperties } from './confirm-publisher.ts';

export const HEADER = {
  topic: 'outrigger-topic',
  attempt: 'outrigger-attempt',
  lastStatus: 'outrigger-last-status',
  lastError: 'outrigger-last-error',
  deadLetterReason: 'outrigger-dead-letter-reason',
  deadLetteredAt: 'outrigger-dead-lettered-at',
} as const;

/** Errors are cut to this many characters before they travel with a message. */
const MAX_ERROR_LENGTH = 500;

type RawHeaders = Record<string, unknown>;

/** The message as a consumer sees it. Messages from other producers get a topic and an id too. */
export function decodeMessage(message: Message): InboundMessage {
  const { properties, fields } = message;
  const raw: RawHeaders = properties.headers ?? {};
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key.startsWith('outrigger-') || key.startsWith('x-')) continue;
    const text = asText(value);
    if (text !== undefined) headers[key] = text;
  }
  return {
    id: asText(properties.messageId) ?? randomUUID(),
    topic: asText(raw[HEADER.topic]) ?? fields.exchange,
    body: message.content,
    contentType: asText(properties.contentType),
    headers,
    attempt: positive(raw[HEADER.attempt]) ?? 1,
    publishedAt: typeof properties.timestamp === 'number' ? new Date(properties.timestamp * 1000) : undefined,
  };
}

export function decodeDeadLetter(message: Message): DeadLetter {
  const raw: RawHeaders = message.properties.headers ?? {};
  const inbound = decodeMessage(message);
  const reason = asText(raw[HEADER.deadLetterReason]);
  const at = asText(raw[HEADER.deadLetteredAt]);
  return {
    ...inbound,
    reason: reason === 'rejected' || reason === 'max-attempts' || reason === 'nacked' ? reason : 'unknown',
    lastStatus: positive(raw[HEADER.lastStatus]),
    lastError: asText(raw[HEADER.lastError]),
    attempts: inbound.attempt,
    deadLetteredAt: at === undefined ? undefined : new Date(at),
  };
}

/** The properties a message is published with, first by the publish API. */
export function publishProperties(
  message: { id: string; topic: string; contentType?: string | undefined; headers: Record<string, string> },
  appId: string,
): PublishProperties {
  return {
    messageId: message.id,
    contentType: message.contentType,
    timestamp: Math.floor(Date.now() / 1000),
    appId,
    headers: { ...message.headers, [HEADER.topic]: message.topic },
    persistent: true,
    mandatory: true,
  };
}

/** The same message for its next attempt: attempt + 1, and what went wrong last. */
export function retryProperties(message: Message, failure: Failure): PublishProperties {
  const inbound = decodeMessage(message);
  return republish(message, inbound, {
    [HEADER.attempt]: inbound.attempt + 1,
    ...failureHeaders(failure),
  });
}

/** The same message parked with why it was given up. */
export function deadLetterProperties(message: Message, reason: DeadLetterReason, failure: Failure): PublishProperties {
  const inbound = decodeMessage(message);
  return republish(message, inbound, {
    [HEADER.attempt]: inbound.attempt,
    ...failureHeaders(failure),
    [HEADER.deadLetterReason]: reason,
    [HEADER.deadLetteredAt]: new Date().toISOString(),
  });
}

/** A parked message back on its way: attempt 1 again, the dead-letter facts dropped; `extra` headers added. */
export function replayProperties(message: Message, extra: RawHeaders = {}): PublishProperties {
  return republish(message, decodeMessage(message), extra);
}

function republish(message: Message, inbound: InboundMessage, extra: RawHeaders): PublishProperties {
  const properties: MessageProperties = message.properties;
  const headers: RawHeaders = { ...inbound.headers, [HEADER.topic]: inbound.topic, ...extra };
  return {
    messageId: inbound.id,
    contentType: properties.contentType,
    contentEncoding: properties.contentEncoding,
    timestamp: properties.timestamp,
    appId: properties.appId,
    correlationId: properties.correlationId,
    type: properties.type,
    headers,
    persistent: true,
    mandatory: true,
  };
}

function failureHeaders(failure: Failure): RawHeaders {
  return {
    ...(failure.status === undefined ? {} : { [HEADER.lastStatus]: failure.status }),
    [HEADER.lastError]: failure.error.slice(0, MAX_ERROR_LENGTH),
  };
}

function asText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

function positive(value: unknown): number | undefined {
  const number = typeof value === 'number' ? value : Number(asText(value));
  return Number.isInteger(number) && number > 0 ? number : undefined;
}
