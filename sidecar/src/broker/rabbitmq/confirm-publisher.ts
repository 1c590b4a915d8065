// Publishing with publisher confirms on one confirm channel per connection,
// many messages in flight at once (never one-at-a-time waits). A publish
// resolves when the broker has made the message durable; `mandatory` turns
// "no queue wanted it" into routed: false instead of a silent drop. Each
// publish carries its own tag (a header), so a return is matched to the
// publish it belongs to even when several in flight share a message id (a
// message dead-lettered while the app's publish of it is still unconfirmed).
//
// The common case (channel open, the exchange declared on it, the socket not
// full) goes straight to the channel: no await before the write, so a publish
// costs one promise. Everything else waits its turn on the slow path.
//
// What was declared on the channel is kept in a WeakMap by declaration: what
// is remembered is bounded by whoever holds the declarations (the broker's
// topics, rabbit-broker.ts); a declaration made anew is declared again
// (idempotent, one round trip) by the next publish needing it.
import type { ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import type { Logger } from '../../telemetry/logger.ts';
import { BrokerUnavailableError } from '../broker.ts';

/**
 * How every message is published: durable, and returned by the broker when no queue takes it.
 * `headers` is the caller's own object: publish() writes the message's tag into it.
 */
export type PublishProperties = Options.Publish & {
  messageId: string;
  headers: Record<string, unknown>;
  persistent: true;
  mandatory: true;
};

/** The header carrying a publish's tag; consumers never see it (decodeMessage drops `outrigger-` headers). */
export const PUBLISH_TAG = 'outrigger-publish-tag';
/** Tags wrap here: unique among the publishes of one channel still waiting for a confirm. */
const MAX_TAG = 2 ** 31 - 1;
/** Something a publish needs on the broker first (its exchange), declared once per channel. */
export interface Declaration {
  readonly declare: (channel: ConfirmChannel) => Promise<unknown>;
}

export class ConfirmPublisher {
  private model: ChannelModel | undefined;
  private opening: Promise<ConfirmChannel> | undefined;
  /** The channel once open: what the fast path publishes on. */
  private open: ConfirmChannel | undefined;
  /**
   * Declarations made on the current channel: true when done, the promise while under way. Weak: one
   * the broker forgets (past its cap of topics) is forgotten here too.
   */
  private declared = new WeakMap<Declaration, true | Promise<void>>();
  /** The last tag given to a publish. */
  private tag = 0;
  /** Tags of publishes the broker returned as unroutable; read when their confirm arrives. */
  private readonly returned = new Set<number>();
  /** Set while the channel's write buffer is full; publishes wait for 'drain'. */
  private drained: Promise<void> | undefined;
  private inFlight = 0;
  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  /** Publishes written or waiting to be, not yet confirmed. */
  get publishesInFlight(): number {
    return this.inFlight;
  }

  /** A new connection: open the channel on it (part of the connection's setup). */
  async attach(model: ChannelModel): Promise<void> {
    this.model = model;
    this.forgetChannel();
    await this.currentChannel();
  }

  /** The connection is gone: nothing more can be published until the next attach. */
  detach(): void {
    this.model = undefined;
    this.forgetChannel();
  }

  /** Publishes (after `declaration`, the first time on this channel); resolves with whether any queue took it. */
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    properties: PublishProperties,
    declaration?: Declaration,
  ): Promise<{ routed: boolean }> {
    const channel = this.open;
    if (
      channel !== undefined &&
      this.drained === undefined &&
      (declaration === undefined || this.declared.get(declaration) === true)
    ) {
      return this.send(channel, exchange, routingKey, body, properties);
    }
    return this.publishWhenReady(exchange, routingKey, body, properties, declaration);
  }

  /** Waits for the channel, the declaration and room in the socket, then sends. */
  private async publishWhenReady(
    exchange: string,
    routingKey: string,
    body: Buffer,
    properties: PublishProperties,
    declaration: Declaration | undefined,
  ): Promise<{ routed: boolean }> {
    this.inFlight += 1;
    let channel: ConfirmChannel;
    try {
      channel = await this.currentChannel();
      if (declaration !== undefined) await this.ensureDeclared(channel, declaration);
      while (this.drained !== undefined) await this.drained;
    } catch (error) {
      throw error instanceof BrokerUnavailableError ? error : new BrokerUnavailableError(describe(error));
    } finally {
      this.inFlight -= 1;
    }
    return this.send(channel, exchange, routingKey, body, properties);
  }

  private send(
    channel: ConfirmChannel,
    exchange: string,
    routingKey: string,
    body: Buffer,
    properties: PublishProperties,
  ): Promise<{ routed: boolean }> {
    this.tag = (this.tag % MAX_TAG) + 1;
    const tag = this.tag;
    properties.headers[PUBLISH_TAG] = tag;
    return new Promise((resolve, reject) => {
      this.inFlight += 1;
      let written: boolean;
      try {
        written = channel.publish(exchange, routingKey, body, properties, (error) => {
          this.inFlight -= 1;
          const routed = !this.returned.delete(tag);
          if (error) reject(new BrokerUnavailableError(`the broker did not confirm the message: ${describe(error)}`));
          else resolve({ routed });
        });
      } catch (error) {
        // The channel closed under us (amqplib throws): nothing was written.
        this.inFlight -= 1;
        reject(new BrokerUnavailableError(describe(error)));
        return;
      }
      if (!written && this.drained === undefined)
        this.drained = untilDrained(channel, () => (this.drained = undefined));
    });
  }

  /** Waits for every outstanding confirm, then closes the channel. */
  async close(): Promise<void> {
    const opening = this.opening;
    this.forgetChannel();
    if (opening === undefined) return;
    try {
      const open = await opening;
      await open.waitForConfirms();
      await open.close();
    } catch {
      // The channel or its connection was already gone; nothing is left to confirm.
    }
  }

  /**
   * Runs the declaration once on this channel; a failed one is forgotten, so the next publish tries again.
   * Its outcome is recorded in the map of the channel it was made on only.
   */
  private ensureDeclared(channel: ConfirmChannel, declaration: Declaration): Promise<void> | undefined {
    const declared = this.declared;
    const state = declared.get(declaration);
    if (state === true) return undefined;
    if (state !== undefined) return state;
    const declaring: Promise<void> = declaration.declare(channel).then(
      () => {
        declared.set(declaration, true);
      },
      (error: unknown) => {
        if (declared.get(declaration) === declaring) declared.delete(declaration);
        throw error;
      },
    );
    declared.set(declaration, declaring);
    return declaring;
  }

  private forgetChannel(): void {
    this.opening = undefined;
    this.open = undefined;
  }

  private currentChannel(): Promise<ConfirmChannel> {
    if (this.opening !== undefined) return this.opening;
    const model = this.model;
    if (model === undefined) return Promise.reject(new BrokerUnavailableError('not connected to the broker'));
    const opening = model.createConfirmChannel().then((channel) => {
      channel.on('return', (message: Message) => {
        const tag: unknown = message.properties.headers?.[PUBLISH_TAG];
        if (typeof tag === 'number') this.returned.add(tag);
      });
      channel.on('error', (error: Error) => this.logger.warn({ err: error.message }, 'publish channel error'));
      channel.on('close', () => {
        // A channel-level error (e.g. an exchange declared with another type) closes only the
        // channel: the next publish opens a new one on the same connection.
        if (this.opening === opening) this.forgetChannel();
      });
      if (this.opening === opening) {
        this.open = channel;
        this.declared = new WeakMap();
        this.returned.clear(); // tags of the channel before, whose confirms will never come
      }
      return channel;
    });
    opening.catch(() => {
      if (this.opening === opening) this.forgetChannel();
    });
    this.opening = opening;
    return opening;
  }
}

/** Resolves when the channel's socket has room again, or the channel closed (its publishes then fail). */
function untilDrained(channel: ConfirmChannel, cleared: () => void): Promise<void> {
  return new Promise((resume) => {
    const done = () => {
      channel.off('drain', done);
      channel.off('close', done);
      cleared();
      resume();
    };
    channel.once('drain', done);
    channel.once('close', done);
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
