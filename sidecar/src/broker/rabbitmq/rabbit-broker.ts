// The Broker on RabbitMQ: one recovering connection, a confirm publisher, and
// the topology they need, re-created on every reconnect.
import type { Logger } from '../../telemetry/logger.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import { type Broker, BrokerUnavailableError, type OutgoingMessage, type PublishOutcome } from '../broker.ts';
import { ConfirmPublisher } from './confirm-publisher.ts';
import { RabbitConnection } from './connection.ts';
import { TopicExchanges, topicExchange } from './topology.ts';

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
  private readonly exchanges = new TopicExchanges();
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
    this.connection.onConnected((model) => {
      model.once('close', () => this.publisher.detach());
      return this.publisher.attach(model);
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

  /** Delayed delivery lands with the delay cascade; until then only immediate publishes. */
  readonly maxDelayMs = 0;

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
    return this.publisher.publish(
      topicExchange(message.topic),
      message.topic,
      message.body,
      {
        messageId: message.id,
        contentType: message.contentType,
        timestamp: Math.floor(Date.now() / 1000),
        appId: this.appId,
        headers: message.headers,
      },
      (channel) => this.exchanges.ensure(channel, message.topic),
    );
  }
}
