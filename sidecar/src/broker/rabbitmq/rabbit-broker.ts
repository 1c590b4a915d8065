// The Broker on RabbitMQ: one recovering connection, a confirm publisher, the
// subscriptions' consumers, and the topology they need, re-created on every
// reconnect.
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { CappedMap } from '../../messaging/capped-map.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import {
  type Broker,
  BrokerUnavailableError,
  type Consumer,
  type DeadLetterStore,
  type Delivery,
  type OutgoingMessage,
  type PublishOutcome,
  type SubscriptionQueue,
} from '../broker.ts';
import { ConfirmPublisher, type Declaration } from './confirm-publisher.ts';
import { RabbitConnection } from './connection.ts';
import { RabbitDeadLetterStore } from './dead-letter-store.ts';
import {
  bindTopicToCascade,
  declareDelayCascade,
  delayedPublishAddress,
  delaySeconds,
  MAX_DELAY_MS,
} from './delay-cascade.ts';
import { publishProperties } from './message-codec.ts';
import { RabbitConsumer } from './rabbit-consumer.ts';
import { declareTopic, topicExchange } from './topology.ts';

export interface RabbitBrokerOptions {
  url: string;
  heartbeatMs: number;
  reconnect: { initialMs: number; maxMs: number };
  appId: string;
  logger: Logger;
  metrics: Metrics;
  /**
   * Topics whose declarations are remembered, at most (default 10,000): past it the oldest is
   * forgotten, and declared again (one round trip) when next published to.
   */
  maxRememberedTopics?: number | undefined;
}

/** Topics whose declarations are remembered by default. */
const MAX_REMEMBERED_TOPICS = 10_000;

export class RabbitBroker implements Broker {
  private readonly connection: RabbitConnection;
  private readonly publisher: ConfirmPublisher;
  /**
   * What a publish to each topic needs declared first: its exchange, or its binding to the delay cascade
   * (the publisher knows which it declared on its channel). The most recently added topics only: a
   * forgotten one gets new (equal) declarations, made again. This is all that publishing to many topics keeps.
   */
  private readonly declarations: CappedMap<{ now: Declaration; delayed: Declaration }>;
  private readonly consumers = new Set<RabbitConsumer>();
  private model: ChannelModel | undefined;
  private readonly appId: string;
  private readonly logger: Logger;

  constructor(options: RabbitBrokerOptions) {
    const { maxRememberedTopics = MAX_REMEMBERED_TOPICS } = options;
    this.declarations = new CappedMap(maxRememberedTopics);
    this.appId = options.appId;
    this.logger = options.logger;
    this.connection = new RabbitConnection({
      url: options.url,
      heartbeatMs: options.heartbeatMs,
      reconnect: options.reconnect,
      connectionName: `outrigger:${options.appId}`,
      logger: options.logger,
      metrics: options.metrics,
    });
    this.publisher = new ConfirmPublisher(options.logger);
    this.connection.onConnected(async (model) => {
      model.once('close', () => {
        if (this.model === model) this.model = undefined;
        this.publisher.detach();
        for (const consumer of this.consumers) consumer.detach();
      });
      // The shared delay cascade: idempotent, and cheap when it exists (about 35 ms).
      const setup = await model.createChannel();
      await declareDelayCascade(setup);
      await setup.close();
      await this.publisher.attach(model);
      this.model = model;
      // Each consumer on its own channel; one that cannot declare or consume reports it and retries alone.
      await Promise.all([...this.consumers].map((consumer) => consumer.attach(model)));
    });
  }

  get state() {
    return this.connection.state;
  }

  get address() {
    return this.connection.address;
  }

  get health() {
    return this.connection.health;
  }

  readonly maxDelayMs = MAX_DELAY_MS;

  get publishesInFlight() {
    return this.publisher.publishesInFlight;
  }

  /** Topics whose declarations are remembered (at most maxRememberedTopics). */
  get rememberedTopics(): number {
    return this.declarations.size;
  }

  start(): Promise<void> {
    return this.connection.start();
  }

  consume(spec: SubscriptionQueue, onDelivery: (delivery: Delivery) => void): Consumer {
    const consumer: RabbitConsumer = new RabbitConsumer({
      spec,
      appId: this.appId,
      publisher: this.publisher,
      logger: this.logger,
      onDelivery,
      onClosed: () => this.consumers.delete(consumer),
    });
    this.consumers.add(consumer);
    if (this.model !== undefined) void consumer.attach(this.model);
    return consumer;
  }

  deadLetters(spec: SubscriptionQueue): DeadLetterStore {
    return new RabbitDeadLetterStore(spec, () => this.openConfirmChannel());
  }

  private async openConfirmChannel(): Promise<ConfirmChannel> {
    const model = this.model;
    if (model === undefined || this.connection.state === 'connecting') {
      throw new BrokerUnavailableError(`not connected to the broker (${this.connection.state})`);
    }
    let channel: ConfirmChannel;
    try {
      channel = await model.createConfirmChannel();
    } catch (error) {
      throw new BrokerUnavailableError((error as Error).message);
    }
    // The broker closing this channel (a 404 for a queue deleted by hand) fails the call under way; unheard,
    // amqplib takes its 'error' to the connection, which closed with every publish and consumer on it.
    channel.on('error', (error: Error) => this.logger.debug({ err: error.message }, 'dead-letter channel closed'));
    return channel;
  }

  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((consumer) => consumer.close()));
    await this.publisher.close();
    await this.connection.close();
  }

  publish(message: OutgoingMessage): Promise<PublishOutcome> {
    if (this.connection.state !== 'connected') {
      return Promise.reject(new BrokerUnavailableError(`not connected to the broker (${this.connection.state})`));
    }
    const { topic } = message;
    const properties = publishProperties(message, this.appId);
    const seconds = delaySeconds(message.delayMs ?? 0);
    const declarations = this.declarationsOf(topic);
    if (seconds === 0) {
      return this.publisher.publish(topicExchange(topic), topic, message.body, properties, declarations.now);
    }
    // Into the delay cascade, addressed to the topic. The cascade's sink takes what no
    // queue wants when it is due, so a delayed publish always reads as routed.
    const { exchange, routingKey } = delayedPublishAddress(seconds, { topic });
    return this.publisher.publish(exchange, routingKey, message.body, properties, declarations.delayed);
  }

  private declarationsOf(topic: string): { now: Declaration; delayed: Declaration } {
    let declarations = this.declarations.get(topic);
    if (declarations === undefined) {
      declarations = {
        now: { declare: (channel) => declareTopic(channel, topic) },
        delayed: { declare: (channel) => bindTopicToCascade(channel, topic) },
      };
      this.declarations.set(topic, declarations);
    }
    return declarations;
  }
}
