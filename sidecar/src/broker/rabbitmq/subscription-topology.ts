// What a subscription needs on the broker (names in topology.ts).
import type { Channel } from 'amqplib';
import type { SubscriptionQueue } from '../broker.ts';
import { bindQueueToCascade, bindTopicToCascade } from './delay-cascade.ts';
import { declareTopic, topicExchange } from './topology.ts';

/**
 * The subscription's queue and dead-letter queue exist, the queue takes every
 * message on the topic (directly and from the delay cascade) and its own
 * retries; idempotent. Fails (closing the channel) when a queue exists with
 * other arguments, e.g. after changing `queueType` or `ordered`.
 */
const QUORUM_DELIVERY_LIMIT = 1_000_000_000;

export async function declareSubscriptionQueue(channel: Channel, spec: SubscriptionQueue): Promise<void> {
  const type =
    spec.queueType === 'quorum'
      ? // RabbitMQ 4 gives quorum queues a delivery limit of 20 by default and drops a message past it; every
        // hand-back (shutdown, an app restart, listing dead letters) counts as a delivery, so the sidecar sets
        // its own limit, high enough never to be reached. Attempts are counted by the sidecar.
        { 'x-queue-type': 'quorum', 'x-delivery-limit': QUORUM_DELIVERY_LIMIT }
      : { 'x-queue-type': 'classic' };
  await channel.assertQueue(spec.deadLetterQueue, { durable: true, arguments: type });
  await channel.assertQueue(spec.queue, {
    durable: true,
    arguments: spec.singleActiveConsumer ? { ...type, 'x-single-active-consumer': true } : type,
  });
  await declareTopic(channel, spec.topic);
  await channel.bindQueue(spec.queue, topicExchange(spec.topic), '#');
  await bindTopicToCascade(channel, spec.topic);
  await bindQueueToCascade(channel, spec.queue);
}
