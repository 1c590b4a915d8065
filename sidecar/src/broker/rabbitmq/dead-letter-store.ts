// A subscription's dead-letter queue, read and moved without a management
// plugin: basic.get on a channel of its own, messages held unacknowledged while
// it looks, and the channel's close hands back everything it did not take, in
// its place. Two calls at once on the same queue each see only what the other
// does not hold.
import type { ConfirmChannel, GetMessage } from 'amqplib';
import type { DeadLetter, DeadLetterStore, SubscriptionQueue } from '../broker.ts';
import { decodeDeadLetter, replayProperties } from './message-codec.ts';

/** Messages one call looks at, at most; replaying everything in a larger queue takes more calls. */
export const MAX_SCAN = 10_000;

export class RabbitDeadLetterStore implements DeadLetterStore {
  private readonly openChannel: () => Promise<ConfirmChannel>;
  private readonly spec: SubscriptionQueue;

  constructor(spec: SubscriptionQueue, openChannel: () => Promise<ConfirmChannel>) {
    this.spec = spec;
    this.openChannel = openChannel;
  }

  peek(limit: number): Promise<DeadLetter[]> {
    return this.scan(limit, async (held) => held.map(decodeDeadLetter));
  }

  replay(selection: { ids: string[] } | { all: true }): Promise<string[]> {
    const wanted = 'ids' in selection ? new Set(selection.ids) : undefined;
    return this.scan(MAX_SCAN, async (held, channel) => {
      const chosen = held.filter((message) => wanted === undefined || wanted.has(decodeDeadLetter(message).id));
      for (const message of chosen) {
        channel.publish('', this.spec.queue, message.content, {
          ...replayProperties(message),
          persistent: true,
          mandatory: true,
        });
      }
      // Acked only once the copies are durable: a failure here leaves every original parked.
      await channel.waitForConfirms();
      for (const message of chosen) channel.ack(message);
      return chosen.map((message) => decodeDeadLetter(message).id);
    });
  }

  remove(id: string): Promise<number> {
    return this.scan(MAX_SCAN, async (held, channel) => {
      const chosen = held.filter((message) => decodeDeadLetter(message).id === id);
      for (const message of chosen) channel.ack(message);
      return chosen.length;
    });
  }

  /** Holds up to `limit` messages from the head of the queue, runs `visit`, and hands the rest back. */
  private async scan<T>(limit: number, visit: (held: GetMessage[], channel: ConfirmChannel) => Promise<T>): Promise<T> {
    const channel = await this.openChannel();
    try {
      const { messageCount } = await channel.checkQueue(this.spec.deadLetterQueue);
      const held: GetMessage[] = [];
      while (held.length < Math.min(limit, messageCount)) {
        const message = await channel.get(this.spec.deadLetterQueue, { noAck: false });
        if (message === false) break;
        held.push(message);
      }
      const result = await visit(held, channel);
      // Acks are asynchronous; a round trip makes sure they reached the broker before the close.
      await channel.checkQueue(this.spec.deadLetterQueue);
      return result;
    } finally {
      await channel.close().catch(() => {});
    }
  }
}
