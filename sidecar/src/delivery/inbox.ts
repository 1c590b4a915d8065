// Idempotent consumption: the ids of messages the app has already processed,
// per subscription, for a window. A redelivery of one of them (the connection
// dropped between the app's 2xx and the ack) is acked without reaching the
// app again. In memory and bounded: the oldest ids go first when it is full.
// The app still gets `ce-id` on every delivery to dedupe in its own transaction.
import type { Delivery } from '../broker/broker.ts';
import { RecentKeys } from '../messaging/recent-keys.ts';

export class Inbox {
  private readonly ids: RecentKeys<true>;

  constructor({ windowMs, maxIds, now }: { windowMs: number; maxIds: number; now?: () => number }) {
    this.ids = new RecentKeys({ windowMs, maxKeys: maxIds, now });
  }

  get size(): number {
    return this.ids.size;
  }

  has(id: string): boolean {
    return this.ids.get(id) !== undefined;
  }

  /** The app processed this message. */
  remember(id: string): void {
    this.ids.set(id, true);
  }

  /**
   * True when the app already processed this message: then it is acked here,
   * and the caller hands it to nobody. Checked on arrival and again right
   * before a message that waited is handed out (a copy may have been acked meanwhile).
   */
  absorb(delivery: Delivery): boolean {
    if (!this.has(delivery.id)) return false;
    void delivery.ack();
    return true;
  }
}
