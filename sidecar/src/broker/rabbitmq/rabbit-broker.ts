// The Broker on RabbitMQ: one recovering connection, a confirm publisher, and
// the topology they need, re-created on every reconnect.
import type { Logger } from '../../telemetry/logger.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import { type Broker, BrokerUnavailableError, type OutgoingMessage, type PublishOutcome } from '../broker.ts';
import { ConfirmPublisher } from './confirm-publisher.ts';
import { RabbitConnection } from './connection.ts';
import {
  bindTopicToCascade,
  declareDelayCascade,
  delayedPublishAddress,
  delaySeconds,
  MAX_DELAY_MS,
} from './delay-cascade.ts';
import { DeclareOnce, declareTopic, topicExchange } from './topology.ts';

export interface RabbitBrokerOptions {
  url: string;
  heartbeatMs: number;
  reconnect: { initialMs: number; maxMs: number };
  appId: string;
  logger: Logger;
  metrics: Metrics;
}

export class RabbitBroker implements Broker {
  private readonly connection: RabbitConnection;
  private readonly publisher: ConfirmPublisher;
  private readonly declarations = new DeclareOnce();
  private readonly appId: string;

  constructor(options: RabbitBrokerOptions) {
    this.appId = options.appId;
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
      model.once('close', () => this.publisher.detach());
      // The shared delay cascade: idempotent, and cheap when it exists (about 35 ms).
      const setup = await model.createChannel();
      await declareDelayCascade(setup);
      await setup.close();
      await this.publisher.attach(model);
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

  start(): Promise<void> {
    return this.connection.start();
  }

  async close(): Promise<void> {
    await this.publisher.close();
    await this.connection.close();
  }

  async publish(message: OutgoingMessage): Promise<PublishOutcome> {
    if (this.connection.state !== 'connected') {
      throw new BrokerUnavailableError(`not connected to the broker (${this.connection.state})`);
    }
    const { topic } = message;
    const properties = {
      messageId: message.id,
      contentType: message.contentType,
      timestamp: Math.floor(Date.now() / 1000),
      appId: this.appId,
      headers: message.headers,
    };
    const seconds = delaySeconds(message.delayMs ?? 0);
    if (seconds === 0) {
      return this.publisher.publish(topicExchange(topic), topic, message.body, properties, (channel) =>
        this.declarations.ensure(channel, `topic:${topic}`, () => declareTopic(channel, topic)),
      );
    }
    // Into the delay cascade, addressed to the topic. The cascade's sink takes what no
    // queue wants when it is due, so a delayed publish always reads as routed.
    const { exchange, routingKey } = delayedPublishAddress(seconds, { topic });
    return this.publisher.publish(exchange, routingKey, message.body, properties, (channel) =>
      this.declarations.ensure(channel, `delayed:${topic}`, () => bindTopicToCascade(channel, topic)),
    );
  }
}
