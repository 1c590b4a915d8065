// One subscription's consumer: its own channel with basic.qos, its queues
// declared on every new connection, at most one broker consumer at a time.
// Channel operations run one after another, so pause, resume, recovery and
// close never race into a second consumer (the leak Dapr users hit after
// reconnects). A delivery is settled on the channel it came from; once that
// channel is gone, settling does nothing and the broker hands the message out again.
import { randomBytes } from 'node:crypto';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../../telemetry/logger.ts';
import type { Consumer, ConsumerState, DeadLetterReason, Delivery, Failure, SubscriptionQueue } from '../broker.ts';
import type { ConfirmPublisher } from './confirm-publisher.ts';
import { delayedPublishAddress, delaySeconds } from './delay-cascade.ts';
import { deadLetterProperties, decodeMessage, retryProperties } from './message-codec.ts';
import { declareSubscriptionQueue } from './subscription-topology.ts';

/** After a failed declaration or a broker-side cancel, try again this much later. */
const REOPEN_DELAY_MS = 5_000;

export interface RabbitConsumerOptions {
  spec: SubscriptionQueue;
  appId: string;
  publisher: ConfirmPublisher;
  logger: Logger;
  onDelivery: (delivery: Delivery) => void;
  /** Runs once `close()` is done, so the broker forgets this consumer. */
  onClosed: () => void;
}

export class RabbitConsumer implements Consumer {
  private model: ChannelModel | undefined;
  private channel: Channel | undefined;
  private consumerTag: string | undefined;
  private desired: 'active' | 'paused' | 'closed' = 'active';
  private current: ConsumerState = 'waiting-for-broker';
  private why = 'not connected to the broker yet';
  private pauseReason = '';
  private work: Promise<void> = Promise.resolve();
  private reopenTimer: NodeJS.Timeout | undefined;
  private readonly options: RabbitConsumerOptions;
  private readonly log: Logger;

  constructor(options: RabbitConsumerOptions) {
    this.options = options;
    this.log = options.logger.child({ subscription: options.spec.subscription, queue: options.spec.queue });
  }

  get state(): ConsumerState {
    return this.current;
  }

  get detail(): string {
    return this.why;
  }

  /** A new connection (first or recovered): open a channel, declare, consume. Never throws. */
  attach(model: ChannelModel): Promise<void> {
    this.model = model;
    this.channel = undefined;
    this.consumerTag = undefined;
    return this.serially(() => this.open(model));
  }

  /** The connection is gone; its channel and consumer with it. */
  detach(): void {
    this.model = undefined;
    this.channel = undefined;
    this.consumerTag = undefined;
    clearTimeout(this.reopenTimer);
    if (this.desired !== 'closed') this.setState('waiting-for-broker', 'not connected to the broker');
  }

  pause(reason: string): void {
    if (this.desired === 'closed') return;
    this.desired = 'paused';
    this.pauseReason = reason;
    if (this.channel === undefined) return;
    void this.serially(() => this.sync());
  }

  resume(): void {
    if (this.desired !== 'paused') return;
    this.desired = 'active';
    void this.serially(() => this.sync());
  }

  async close(): Promise<void> {
    if (this.desired === 'closed') return;
    this.desired = 'closed';
    clearTimeout(this.reopenTimer);
    await this.serially(async () => {
      await this.sync();
      const channel = this.channel;
      this.channel = undefined;
      // Closing the channel hands every unsettled message back to the queue, attempt unchanged.
      if (channel !== undefined) await channel.close().catch(() => {});
    });
    this.setState('closed', 'closed');
    this.options.onClosed();
  }

  private serially(step: () => Promise<void>): Promise<void> {
    const next = this.work.then(step).catch((error: unknown) => {
      this.log.warn({ err: (error as Error).message }, 'consumer operation failed');
    });
    this.work = next;
    return next;
  }

  private async open(model: ChannelModel): Promise<void> {
    if (this.desired === 'closed' || this.model !== model) return;
    const { spec } = this.options;
    let channel: Channel | undefined;
    try {
      channel = await model.createChannel();
      const opened = channel;
      opened.on('error', (error: Error) => this.log.warn({ err: error.message }, 'consumer channel error'));
      opened.on('close', () => this.channelClosed(opened));
      await declareSubscriptionQueue(opened, spec);
      await opened.prefetch(spec.prefetch);
      this.channel = opened;
      await this.sync();
    } catch (error) {
      const message = (error as Error).message;
      this.setState('failed', `declaring or consuming ${spec.queue} failed: ${message}`);
      this.log.error({ err: message }, 'subscription cannot consume; trying again in 5 s');
      await channel?.close().catch(() => {});
      this.scheduleReopen(model);
    }
  }

  /** Brings the broker consumer in line with what is wanted. */
  private async sync(): Promise<void> {
    const channel = this.channel;
    if (channel === undefined) return;
    if (this.desired === 'active' && this.consumerTag === undefined) {
      const tag = `outrigger.${this.options.appId}.${this.options.spec.subscription}.${randomBytes(4).toString('hex')}`;
      this.consumerTag = tag;
      await channel.consume(this.options.spec.queue, (message) => this.received(channel, tag, message), {
        consumerTag: tag,
      });
      this.setState('consuming', `consuming ${this.options.spec.queue}`);
    } else if (this.desired !== 'active' && this.consumerTag !== undefined) {
      const tag = this.consumerTag;
      this.consumerTag = undefined;
      await channel.cancel(tag);
    }
    if (this.desired === 'paused') this.setState('paused', this.pauseReason);
  }

  private received(channel: Channel, tag: string, message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer: the queue was deleted, or the node holding it went away.
      if (this.consumerTag !== tag) return;
      this.consumerTag = undefined;
      this.setState('failed', `the broker cancelled the consumer of ${this.options.spec.queue}`);
      this.log.warn('the broker cancelled the consumer; declaring the queue again in 5 s');
      if (this.model !== undefined) this.scheduleReopen(this.model, channel);
      return;
    }
    this.options.onDelivery(this.delivery(channel, message));
  }

  private channelClosed(channel: Channel): void {
    if (this.channel !== channel) return;
    this.channel = undefined;
    this.consumerTag = undefined;
    if (this.desired === 'closed' || this.model === undefined) return;
    this.setState('failed', `the channel of ${this.options.spec.queue} closed`);
    this.scheduleReopen(this.model);
  }

  private scheduleReopen(model: ChannelModel, stale?: Channel): void {
    clearTimeout(this.reopenTimer);
    this.reopenTimer = setTimeout(() => {
      if (this.model !== model || this.desired === 'closed') return;
      void this.serially(async () => {
        if (stale !== undefined && this.channel === stale) {
          this.channel = undefined;
          await stale.close().catch(() => {});
        }
        if (this.channel === undefined) await this.open(model);
      });
    }, REOPEN_DELAY_MS);
    this.reopenTimer.unref();
  }

  private delivery(channel: Channel, message: ConsumeMessage): Delivery {
    const { publisher } = this.options;
    const { queue, deadLetterQueue } = this.options.spec;
    const log = this.log;
    let settled = false;
    /**
     * Runs `settle` once, on the channel the message came from, if that channel is still open.
     * False when it did not settle the message as asked (settled before, channel gone, handed back).
     */
    const once = async (what: string, settle: () => Promise<boolean> | boolean): Promise<boolean> => {
      if (settled) return false;
      settled = true;
      try {
        return await settle();
      } catch (error) {
        // The channel is gone: the broker has already taken the message back.
        log.debug({ err: (error as Error).message, what }, 'could not settle a delivery; the broker redelivers it');
        return false;
      }
    };
    /**
     * Publishes the next copy, confirmed, then acks this one. A copy no queue
     * took (someone deleted the dead-letter queue) is published once more after
     * declaring the queues again; a copy that still failed hands the message back
     * (and resolves false, so nobody counts it as retried or parked).
     */
    const forward = (exchange: string, routingKey: string, properties: ReturnType<typeof retryProperties>) =>
      once('forward', async () => {
        try {
          let { routed } = await publisher.publish(exchange, routingKey, message.content, properties);
          if (!routed) {
            await declareSubscriptionQueue(channel, this.options.spec);
            ({ routed } = await publisher.publish(exchange, routingKey, message.content, properties));
          }
          if (!routed) throw new Error(`no queue took the copy sent to ${routingKey}`);
        } catch (error) {
          log.warn({ err: (error as Error).message }, 'could not re-publish a delivery; handing it back');
          channel.nack(message, false, true);
          return false;
        }
        channel.ack(message);
        return true;
      });
    return {
      ...decodeMessage(message),
      ack: async () => {
        await once('ack', () => {
          channel.ack(message);
          return true;
        });
      },
      release: async () => {
        await once('release', () => {
          channel.nack(message, false, true);
          return true;
        });
      },
      retry: (delayMs: number, failure: Failure) => {
        const { exchange, routingKey } = delayedPublishAddress(delaySeconds(delayMs), { queue });
        return forward(exchange, routingKey, retryProperties(message, failure));
      },
      deadLetter: (reason: DeadLetterReason, failure: Failure) =>
        forward('', deadLetterQueue, deadLetterProperties(message, reason, failure)),
    };
  }

  private setState(state: ConsumerState, detail: string): void {
    if (this.current === 'closed') return;
    this.current = state;
    this.why = detail;
  }
}
