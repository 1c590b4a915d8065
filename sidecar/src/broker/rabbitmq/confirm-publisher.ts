// Publishing with publisher confirms on one confirm channel per connection,
// many messages in flight at once (never one-at-a-time waits). A publish
// resolves when the broker has made the message durable; `mandatory` turns
// "no queue wanted it" into routed: false instead of a silent drop.
import type { ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import type { Logger } from '../../telemetry/logger.ts';
import { BrokerUnavailableError } from '../broker.ts';

export type ChannelSetup = (channel: ConfirmChannel) => Promise<void>;

export class ConfirmPublisher {
  private model: ChannelModel | undefined;
  private channel: Promise<ConfirmChannel> | undefined;
  /** Ids of messages the broker returned as unroutable; read when their confirm arrives. */
  private readonly returned = new Set<string>();
  /** Set while the channel's write buffer is full; publishes wait for 'drain'. */
  private drained: Promise<void> | undefined;
  private inFlight = 0;
  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  get publishesInFlight(): number {
    return this.inFlight;
  }

  /** A new connection: open the channel on it (part of the connection's setup). */
  async attach(model: ChannelModel): Promise<void> {
    this.model = model;
    this.channel = undefined;
    await this.currentChannel();
  }

  /** The connection is gone: nothing more can be published until the next attach. */
  detach(): void {
    this.model = undefined;
    this.channel = undefined;
  }

  /**
   * Runs `declare` on the current channel (asserting an exchange, say) and
   * publishes; resolves with whether the message was routed to any queue.
   */
  async publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    options: Options.Publish & { messageId: string },
    declare?: ChannelSetup,
  ): Promise<{ routed: boolean }> {
    this.inFlight += 1;
    try {
      const channel = await this.currentChannel();
      if (declare !== undefined) await declare(channel);
      if (this.drained !== undefined) await this.drained;
      return await new Promise((resolve, reject) => {
        const written = channel.publish(
          exchange,
          routingKey,
          body,
          { ...options, mandatory: true, persistent: true },
          (error) => {
            const routed = !this.returned.delete(options.messageId);
            if (error) reject(new BrokerUnavailableError(`the broker did not confirm the message: ${describe(error)}`));
            else resolve({ routed });
          },
        );
        if (!written && this.drained === undefined) {
          this.drained = new Promise((resume) =>
            channel.once('drain', () => {
              this.drained = undefined;
              resume();
            }),
          );
        }
      });
    } catch (error) {
      if (error instanceof BrokerUnavailableError) throw error;
      throw new BrokerUnavailableError(describe(error));
    } finally {
      this.inFlight -= 1;
    }
  }

  /** Waits for every outstanding confirm, then closes the channel. */
  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    if (channel === undefined) return;
    try {
      const open = await channel;
      await open.waitForConfirms();
      await open.close();
    } catch {
      // The channel or its connection was already gone; nothing is left to confirm.
    }
  }

  private currentChannel(): Promise<ConfirmChannel> {
    if (this.channel !== undefined) return this.channel;
    const model = this.model;
    if (model === undefined) return Promise.reject(new BrokerUnavailableError('not connected to the broker'));
    const opening = model.createConfirmChannel().then((channel) => {
      channel.on('return', (message: Message) => {
        const id = message.properties.messageId as string | undefined;
        if (id !== undefined) this.returned.add(id);
      });
      channel.on('error', (error: Error) => this.logger.warn({ err: error.message }, 'publish channel error'));
      channel.on('close', () => {
        // A channel-level error (e.g. an exchange declared with another type) closes only the
        // channel: the next publish opens a new one on the same connection.
        if (this.channel === opening) this.channel = undefined;
        this.drained = undefined;
      });
      return channel;
    });
    opening.catch(() => {
      if (this.channel === opening) this.channel = undefined;
    });
    this.channel = opening;
    return opening;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
