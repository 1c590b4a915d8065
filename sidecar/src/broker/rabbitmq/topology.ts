// Names and declarations of what the sidecar creates on RabbitMQ.
//
//   topic T            durable topic exchange named T; every subscription group's queue binds to it with '#'
//   outrigger.*        the sidecar's own exchanges and queues (delay cascade, ...); topics may not use it
//   amq.*              reserved by RabbitMQ; topics may not use it either
import type { Channel } from 'amqplib';

/** The exchange a topic's messages are published to. */
export const topicExchange = (topic: string) => topic;

/** Declares each topic's exchange once per channel (a declaration is a round trip; publishing is not). */
export class TopicExchanges {
  private readonly declared = new WeakMap<Channel, Map<string, Promise<void>>>();

  ensure(channel: Channel, topic: string): Promise<void> {
    let topics = this.declared.get(channel);
    if (topics === undefined) {
      topics = new Map();
      this.declared.set(channel, topics);
    }
    let declaring = topics.get(topic);
    if (declaring === undefined) {
      declaring = channel.assertExchange(topicExchange(topic), 'topic', { durable: true }).then(() => undefined);
      declaring.catch(() => topics.delete(topic));
      topics.set(topic, declaring);
    }
    return declaring;
  }
}
