// A subscription's dead-letter queue, read and moved without a management
// plugin: basic.get on a channel of its own, messages held unacknowledged while
// it looks, and the channel's close hands back everything it did not take, in
// its place (a quorum queue hands back behind what it handed back before, so
// there every call holds the whole queue). Two calls at once on the same queue
// each see only what the other does not hold.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfirmChannel, GetMessage, Message } from 'amqplib';
import type { DeadLetter, DeadLetterStore, SubscriptionQueue } from '../broker.ts';
import { PUBLISH_TAG } from './confirm-publisher.ts';
import { decodeDeadLetter, replayProperties } from './message-codec.ts';

/** Messages one call looks at, at most; replaying everything in a larger queue takes more calls. */
export const MAX_SCAN = 10_000;

export class RabbitDeadLetterStore implements DeadLetterStore {
  private readonly openChannel: () => Promise<ConfirmChannel>;
  private readonly spec: SubscriptionQueue;
  private pending: Promise<void> = Promise.resolve();

  constructor(spec: SubscriptionQueue, openChannel: () => Promise<ConfirmChannel>) {
    this.spec = spec;
    this.openChannel = openChannel;
  }

  peek(limit: number): Promise<DeadLetter[]> {
    // A quorum queue puts what it hands back at its tail: holding only the head would move
    // it behind the rest. Holding (and handing back) all of it keeps the order.
    const scanned = this.spec.queueType === 'quorum' ? Math.max(limit, MAX_SCAN) : limit;
    return this.scan(scanned, async (held) => [held.slice(0, limit).map(decodeDeadLetter), 0]);
  }

  replay(selection: { ids: string[] } | { all: true }): Promise<string[]> {
    const wanted = 'ids' in selection ? new Set(selection.ids) : undefined;
    return this.scan(MAX_SCAN, async (held, channel) => {
      const chosen = held.filter((message) => wanted === undefined || wanted.has(decodeDeadLetter(message).id));
      // A copy the broker returns (the subscription's queue is gone) was dropped: its original stays parked.
      const returned = new Set<string>();
      channel.on('return', (message: Message) => returned.add(String(message.properties.headers?.[PUBLISH_TAG])));
      chosen.forEach((message, index) => {
        // Persistent and mandatory; the tag says which copy a return is.
        const properties = replayProperties(message, { [PUBLISH_TAG]: String(index) });
        channel.publish('', this.spec.queue, message.content, properties);
      });
      // Acked only once the copies are durable: a failure here leaves every original parked.
      await channel.waitForConfirms();
      const replayed = chosen.filter((_message, index) => !returned.has(String(index)));
      for (const message of replayed) channel.ack(message);
      return [replayed.map((message) => decodeDeadLetter(message).id), replayed.length];
    });
  }

  remove(id: string): Promise<number> {
    return this.scan(MAX_SCAN, async (held, channel) => {
      const chosen = held.filter((message) => decodeDeadLetter(message).id === id);
      for (const message of chosen) channel.ack(message);
      return [chosen.length, chosen.length];
    });
  }

  /**
   * Holds up to `limit` messages from the head of the queue, runs `visit`
   * (which says how many of them it acked), and hands the rest back. One call
   * at a time per store, each waiting until what it handed back is in the
   * queue again (a quorum queue takes a moment), so the next call sees all of it.
   */
  private scan<T>(limit: number, visit: Visit<T>): Promise<T> {
    const run = this.pending.then(() => this.scanNow(limit, visit));
    this.pending = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async scanNow<T>(limit: number, visit: Visit<T>): Promise<T> {
    const channel = await this.openChannel();
    let before = 0;
    let handedBack = 0;
    let result: T;
    try {
      before = (await channel.checkQueue(this.spec.deadLetterQueue)).messageCount;
      const held: GetMessage[] = [];
      while (held.length < Math.min(limit, before)) {
        const message = await channel.get(this.spec.deadLetterQueue, { noAck: false });
        if (message === false) break;
        held.push(message);
      }
      const [value, acked] = await visit(held, channel);
      result = value;
      before -= acked;
      handedBack = held.length - acked;
      // Acks are asynchronous; a round trip makes sure they reached the broker before the close.
      await channel.checkQueue(this.spec.deadLetterQueue);
    } finally {
      await channel.close().catch(() => {});
    }
    if (handedBack > 0 && this.spec.queueType === 'quorum') await this.settled(before);
    return result;
  }

  /** Waits (at most 2 s) until the queue holds at least `count` ready messages again. */
  private async settled(count: number): Promise<void> {
    const channel = await this.openChannel();
    try {
      for (let tries = 0; tries < 40; tries++) {
        if ((await channel.checkQueue(this.spec.deadLetterQueue)).messageCount >= count) return;
        await sleep(50);
      }
    } finally {
      await channel.close().catch(() => {});
    }
  }
}

/** Looks at the held messages; returns its result and how many of them it acked. */
type Visit<T> = (held: GetMessage[], channel: ConfirmChannel) => Promise<[T, number]>;
