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

/** The topic's exchange exists. */
export const declareTopic = (channel: Channel, topic: string) =>
  channel.assertExchange(topicExchange(topic), 'topic', { durable: true });
