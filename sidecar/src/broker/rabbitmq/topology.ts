// Names and declarations of what the sidecar creates on RabbitMQ.
//
//   topic T            durable topic exchange named T; every subscription group's queue binds to it with '#'
//   G:T                (subscription-queue.ts) the queue of group G on topic T (durable; classic or quorum), shared by the group's consumers
//   G:T:dlq            its dead-letter queue, always of the same type
//   outrigger.*        the sidecar's own exchanges and queues (delay cascade, ...); topics may not use it
//   amq.*              reserved by RabbitMQ; topics may not use it either
import type { Channel } from 'amqplib';

/** The exchange a topic's messages are published to. */
export const topicExchange = (topic: string) => topic;

/**
 * Runs each declaration once per channel and key (a declaration is a round
 * trip; publishing is not). A failed one is forgotten, so it is tried again.
 */
export class DeclareOnce {
  private readonly declared = new WeakMap<Channel, Map<string, Promise<void>>>();

  ensure(channel: Channel, key: string, declare: () => Promise<unknown>): Promise<void> {
    let keys = this.declared.get(channel);
    if (keys === undefined) {
      keys = new Map();
      this.declared.set(channel, keys);
    }
    let declaring = keys.get(key);
    if (declaring === undefined) {
      declaring = declare().then(() => undefined);
      declaring.catch(() => keys.delete(key));
      keys.set(key, declaring);
    }
    return declaring;
  }
}

/** The topic's exchange exists. */
export const declareTopic = (channel: Channel, topic: string) =>
  channel.assertExchange(topicExchange(topic), 'topic', { durable: true });
