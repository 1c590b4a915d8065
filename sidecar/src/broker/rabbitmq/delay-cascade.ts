// The delay cascade: delayed delivery held in the broker, with no plugin
// (docs/delayed-delivery.md). Level N is a queue whose messages expire after
// 2^N seconds into level N-1; the routing key spells the delay in binary, one
// word per level, then the destination, so a message waits in exactly the
// levels whose bit is 1. Every sidecar declares it on every (re)connect; all
// sidecars on a broker share it.
import { createHash } from 'node:crypto';
import type { Channel } from 'amqplib';
import { topicExchange } from './topology.ts';

export const DELAY_LEVELS = 28;
/** 2^28 - 1 seconds: about 8.5 years. */
export const MAX_DELAY_SECONDS = 2 ** DELAY_LEVELS - 1;
export const MAX_DELAY_MS = MAX_DELAY_SECONDS * 1000;
/** Level 0 dead-letters here; destinations bind here. */
export const DELAY_DELIVERY_EXCHANGE = 'outrigger.delay.deliver';
/** Takes (and drops at once) a copy of every due message, so that every dead-letter hop routes somewhere. */
export const DELAY_SINK_QUEUE = 'outrigger.delay.sink';

/** A topic (its exchange, so every subscription group) or one queue (a retry for one group). */
export type DelayDestination = { topic: string } | { queue: string };

/** The exchange and the queue of one level share this name. */
export const delayLevelName = (level: number): string => `outrigger.delay.${level}`;

/** Milliseconds to whole seconds, rounded up: a delayed message is never early. */
export function delaySeconds(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_DELAY_MS) {
    throw new RangeError(`a delay must be 0 to ${MAX_DELAY_MS} ms (about 8.5 years), got ${ms}`);
  }
  return Math.ceil(ms / 1000);
}

/** 28 words of 0 or 1, level 27 first, then the destination's words. */
export function delayRoutingKey(seconds: number, destination: DelayDestination): string {
  checkSeconds(seconds);
  return [...seconds.toString(2).padStart(DELAY_LEVELS, '0'), destinationWords(destination)].join('.');
}

/** The level queue a message with this delay waits in first (its highest set bit); none for 0. */
export function firstDelayLevel(seconds: number): number | undefined {
  checkSeconds(seconds);
  return seconds === 0 ? undefined : 31 - Math.clz32(seconds);
}

/**
 * Where a delayed message is published (persistent, mandatory, on a confirm channel).
 * It enters at the level of its highest set bit: the levels above would only pass it down.
 * A delay of 0 enters at level 0, which hands it straight to the delivery exchange.
 */
export function delayedPublishAddress(
  seconds: number,
  destination: DelayDestination,
): { exchange: string; routingKey: string } {
  const routingKey = delayRoutingKey(seconds, destination);
  return { exchange: delayLevelName(firstDelayLevel(seconds) ?? 0), routingKey };
}

/** Declares the 28 levels, the delivery exchange and the sink; idempotent. */
export async function declareDelayCascade(channel: Channel): Promise<void> {
  try {
    await channel.assertExchange(DELAY_DELIVERY_EXCHANGE, 'topic', { durable: true });
    await channel.assertQueue(DELAY_SINK_QUEUE, {
      durable: true,
      arguments: { 'x-queue-type': 'quorum', 'x-max-length': 0 },
    });
    await channel.bindQueue(DELAY_SINK_QUEUE, DELAY_DELIVERY_EXCHANGE, '#');
    // From level 0 up, so that the exchange below a level exists before the level binds to it.
    for (let level = 0; level < DELAY_LEVELS; level++) {
      const name = delayLevelName(level);
      const below = level === 0 ? DELAY_DELIVERY_EXCHANGE : delayLevelName(level - 1);
      await channel.assertExchange(name, 'topic', { durable: true });
      await channel.assertQueue(name, { durable: true, arguments: levelQueueArguments(level, below) });
      await channel.bindQueue(name, name, bitPattern(level, '1'));
      await channel.bindExchange(below, name, bitPattern(level, '0'));
    }
  } catch (error) {
    throw new Error(`declaring the delay cascade failed (see docs/delayed-delivery.md): ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Due messages for `topic` reach the topic's exchange (declared here if new); idempotent. */
export async function bindTopicToCascade(channel: Channel, topic: string): Promise<void> {
  await channel.assertExchange(topicExchange(topic), 'topic', { durable: true });
  await channel.bindExchange(topicExchange(topic), DELAY_DELIVERY_EXCHANGE, destinationPattern({ topic }));
}

/** Due messages for `queue` reach that queue only (it must exist); idempotent. */
export async function bindQueueToCascade(channel: Channel, queue: string): Promise<void> {
  await channel.bindQueue(queue, DELAY_DELIVERY_EXCHANGE, destinationPattern({ queue }));
}

function levelQueueArguments(level: number, below: string): Record<string, string | number> {
  return {
    'x-queue-type': 'quorum',
    // One TTL for the whole queue: every message in it expires in arrival order, at the head.
    'x-message-ttl': 2 ** level * 1000,
    'x-dead-letter-exchange': below,
    // Without both, a quorum queue dead-letters at most once: a failure between levels could lose the message.
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
  };
}

function checkSeconds(seconds: number): void {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_DELAY_SECONDS) {
    throw new RangeError(
      `a delay must be a whole number of seconds from 0 to ${MAX_DELAY_SECONDS} (about 8.5 years), got ${seconds}`,
    );
  }
}

/** Exactly 28 words, `bit` at `level`'s place, any destination after them. */
function bitPattern(level: number, bit: '0' | '1'): string {
  const words = Array<string>(DELAY_LEVELS).fill('*');
  words[DELAY_LEVELS - 1 - level] = bit;
  return [...words, '#'].join('.');
}

/**
 * Any 28 bit words, then exactly this destination. Never `#` before it: topic
 * `x.sensor.readings` must not match the binding of `sensor.readings`.
 */
function destinationPattern(destination: DelayDestination): string {
  return [...Array<string>(DELAY_LEVELS).fill('*'), destinationWords(destination)].join('.');
}

// AMQP routing and binding keys are at most 255 bytes; the bit words and their dots take 56.
const MAX_DESTINATION_BYTES = 255 - 2 * DELAY_LEVELS;

/**
 * `t.<topic>` or `q.<queue>`. A name that would not fit in the key (a topic of
 * more than 197 characters) or that has a word `*` or `#` (which a binding would
 * read as a wildcard) is replaced by its SHA-256: `th.<hex>` or `qh.<hex>`.
 */
function destinationWords(destination: DelayDestination): string {
  const [kind, name] = 'topic' in destination ? ['t', destination.topic] : ['q', destination.queue];
  if (name === '') throw new RangeError(`a delayed message needs a ${kind === 't' ? 'topic' : 'queue'} name`);
  const literal = `${kind}.${name}`;
  const wildcard = name.split('.').some((word) => word === '*' || word === '#');
  if (!wildcard && Buffer.byteLength(literal) <= MAX_DESTINATION_BYTES) return literal;
  return `${kind}h.${createHash('sha256').update(name).digest('hex')}`;
}
