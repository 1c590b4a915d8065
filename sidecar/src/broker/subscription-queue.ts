// Where a configured subscription's messages wait: the names every replica of
// every app agrees on, so replicas of one group compete for one queue.
import type { Subscription } from '../config/schema.ts';
import type { SubscriptionQueue } from './broker.ts';

/** The queue of a subscription group on a topic: `<group>:<topic>` (the colon keeps any two pairs apart). */
export const subscriptionQueueName = (group: string, topic: string) => `${group}:${topic}`;
export const deadLetterQueueName = (queue: string) => `${queue}:dlq`;
/** AMQP queue names are at most 255 bytes. */
export const MAX_QUEUE_NAME_BYTES = 255;

export function subscriptionQueue(subscription: Subscription): SubscriptionQueue {
  const queue = subscriptionQueueName(subscription.group, subscription.topic);
  return {
    subscription: subscription.name,
    topic: subscription.topic,
    queue,
    deadLetterQueue: deadLetterQueueName(queue),
    queueType: subscription.queueType,
    singleActiveConsumer: subscription.ordered,
    prefetch: subscription.prefetch,
  };
}
