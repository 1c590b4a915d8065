// Pull delivery for one subscription: the consumer fills a small buffer (at
// most the prefetch, counting leased messages), `pull` hands messages out
// under a lease, `ack`/`nack` settle them, and a lease that runs out is a
// nack (attempt + 1, after the back-off). Messages nobody pulls for a while
// go back to the queue, so other replicas can take them.
import { randomUUID } from 'node:crypto';
import type { Span } from '@opentelemetry/api';
import type { Delivery } from '../broker/broker.ts';
import type { Subscription } from '../config/schema.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { endSpan, type MessageParent, startProcess, traceHeaders } from '../telemetry/spans.ts';
import type { Inbox } from './inbox.ts';
import { type FailureOutcome, type Settler, settleFailure } from './settle.ts';

/** A buffered message nobody pulled within this long goes back to the queue (attempt unchanged). */
const UNPULLED_RELEASE_MS = 10_000;

export interface Leased {
  ackId: string;
  delivery: Delivery;
  /** The message's headers for the app: its trace context is the lease's `process` span. */
  headers: Record<string, string>;
}

interface Lease {
  delivery: Delivery;
  timer: NodeJS.Timeout;
  /** From the pull to the ack, nack or expiry. */
  span: Span | undefined;
}

interface Waiter {
  leaseMs: number;
  resolve: (messages: Leased[]) => void;
  timer: NodeJS.Timeout;
}

export interface PullQueueOptions {
  subscription: Subscription;
  inbox: Inbox;
  settler: Settler;
  metrics: Metrics;
  logger: Logger;
  /** How each lease's span relates to the producer's (config `tracing.messageParent`). */
  messageParent: MessageParent;
}

export interface SettleReport {
  /** ackIds settled now. */
  settled: string[];
  /** ackIds not (or no longer) leased: expired, settled before, or never issued. */
  unknown: string[];
}

export class PullQueue {
  private readonly buffer: { delivery: Delivery; since: number }[] = [];
  private readonly leases = new Map<string, Lease>();
  private readonly waiters: Waiter[] = [];
  private sweeper: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly options: PullQueueOptions;
  private readonly log: Logger;

  constructor(options: PullQueueOptions) {
    this.options = options;
    this.log = options.logger.child({ subscription: options.subscription.name });
  }

  /** The consumer's callback. */
  readonly accept = (delivery: Delivery): void => {
    if (this.stopping) {
      void delivery.release();
      return;
    }
    if (this.options.inbox.absorb(delivery)) {
      this.count('duplicate');
      return;
    }
    const waiter = this.waiters[0];
    if (waiter !== undefined) {
      waiter.resolve([this.lease(delivery, waiter.leaseMs)]);
      return;
    }
    this.buffer.push({ delivery, since: Date.now() });
    this.sweepLater();
  };

  /**
   * Up to `max` messages, waiting up to `waitMs` for the first; leased for `leaseMs`.
   * When `signal` aborts (the caller went away) while waiting, the wait ends empty,
   * so no message is leased to nobody.
   */
  pull(max: number, waitMs: number, leaseMs: number, signal?: AbortSignal): Promise<Leased[]> {
    const taken = this.take(max, leaseMs);
    if (taken.length > 0 || waitMs <= 0 || this.stopping || signal?.aborted) return Promise.resolve(taken);
    return new Promise((resolve) => {
      const done = (messages: Leased[]) => {
        clearTimeout(waiter.timer);
        signal?.removeEventListener('abort', abandon);
        const index = this.waiters.indexOf(waiter);
        if (index !== -1) this.waiters.splice(index, 1);
        resolve(messages);
      };
      const abandon = () => done([]);
      const waiter: Waiter = {
        leaseMs,
        resolve: done,
        timer: setTimeout(abandon, waitMs),
      };
      signal?.addEventListener('abort', abandon, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Hands leased messages back to the queue at once, attempt unchanged (their puller never got them). */
  async release(ackIds: string[]): Promise<SettleReport> {
    return this.settle(ackIds, async (delivery) => {
      await delivery.release();
      this.count('released');
      return 'released';
    });
  }

  async ack(ackIds: string[]): Promise<SettleReport> {
    return this.settle(ackIds, async (delivery) => {
      this.options.inbox.remember(delivery.id);
      await delivery.ack();
      this.count('acked');
      return 'acked';
    });
  }

  async nack(
    ackIds: string[],
    options: { retryAfterMs?: number | undefined; deadLetter?: boolean },
  ): Promise<SettleReport> {
    const { settler } = this.options;
    return this.settle(ackIds, async (delivery) => {
      const error = 'the app nacked the message';
      const outcome = options.deadLetter
        ? await settleFailure(settler, delivery, { action: 'dead-letter', error, reason: 'nacked' })
        : await settleFailure(settler, delivery, { action: 'retry', error, delayMs: options.retryAfterMs });
      this.count(outcome);
      return outcome;
    });
  }

  /** Shutdown: nothing new; waiting pulls answered empty; buffered and leased messages go back, attempt unchanged. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.sweeper);
    for (const waiter of [...this.waiters]) waiter.resolve([]);
    const back = [...this.buffer.splice(0).map(({ delivery }) => delivery)];
    for (const [ackId, lease] of this.leases) {
      clearTimeout(lease.timer);
      this.leases.delete(ackId);
      endSpan(lease.span, { 'outrigger.outcome': 'released' }, 'released');
      back.push(lease.delivery);
    }
    await Promise.all(back.map((delivery) => delivery.release()));
    this.updateGauge();
  }

  /**
   * Up to `max` buffered messages, leased. A copy of a message acked since it
   * was buffered (the publisher sent it twice) is acked, not handed out again.
   */
  private take(max: number, leaseMs: number): Leased[] {
    const taken: Leased[] = [];
    while (taken.length < max) {
      const next = this.buffer.shift();
      if (next === undefined) break;
      if (this.options.inbox.absorb(next.delivery)) {
        this.count('duplicate');
        continue;
      }
      taken.push(this.lease(next.delivery, leaseMs));
    }
    return taken;
  }

  private lease(delivery: Delivery, leaseMs: number): Leased {
    const ackId = randomUUID();
    const { subscription, messageParent } = this.options;
    const span = startProcess(delivery, subscription, messageParent);
    const timer = setTimeout(() => {
      if (!this.leases.delete(ackId)) return;
      this.updateGauge();
      this.log.debug({ id: delivery.id, attempt: delivery.attempt }, 'lease expired: treated as a nack');
      void settleFailure(this.options.settler, delivery, {
        action: 'retry',
        error: `the lease of ${leaseMs} ms ran out before an ack`,
      }).then((outcome) => {
        endSpan(span, { 'outrigger.outcome': outcome, 'error.type': 'lease_expired' }, 'the lease ran out');
        this.count(outcome);
      });
    }, leaseMs);
    this.leases.set(ackId, { delivery, timer, span });
    this.updateGauge();
    return { ackId, delivery, headers: traceHeaders(span, delivery.headers) };
  }

  private async settle(ackIds: string[], settle: (delivery: Delivery) => Promise<string>): Promise<SettleReport> {
    const report: SettleReport = { settled: [], unknown: [] };
    const work: Promise<void>[] = [];
    for (const ackId of new Set(ackIds)) {
      const lease = this.leases.get(ackId);
      if (lease === undefined) {
        report.unknown.push(ackId);
        continue;
      }
      clearTimeout(lease.timer);
      this.leases.delete(ackId);
      report.settled.push(ackId);
      work.push(
        settle(lease.delivery).then(
          (outcome) => endSpan(lease.span, { 'outrigger.outcome': outcome }, outcome === 'acked' ? undefined : outcome),
          (error: Error) => {
            endSpan(lease.span, { 'error.type': 'settle_failed' }, error.message);
            throw error;
          },
        ),
      );
    }
    await Promise.all(work);
    this.updateGauge();
    return report;
  }

  /** Hands back buffered messages nobody pulled in time. */
  private sweepLater(): void {
    const oldest = this.buffer[0];
    if (this.sweeper !== undefined || oldest === undefined) return;
    // Due when the oldest buffered message is: a sweep every 10 s would let
    // one that came in just after a sweep was scheduled wait almost 20 s.
    this.sweeper = setTimeout(
      () => {
        this.sweeper = undefined;
        const cutoff = Date.now() - UNPULLED_RELEASE_MS;
        while (this.buffer[0] !== undefined && this.buffer[0].since <= cutoff) {
          void this.buffer.shift()?.delivery.release();
          this.count('released');
        }
        this.sweepLater();
      },
      Math.max(0, oldest.since + UNPULLED_RELEASE_MS - Date.now()),
    );
    this.sweeper.unref();
  }

  private count(outcome: FailureOutcome | 'acked' | 'released' | 'duplicate'): void {
    this.options.metrics.deliveries.inc({ subscription: this.options.subscription.name, outcome });
  }

  private updateGauge(): void {
    this.options.metrics.deliveriesInFlight.set({ subscription: this.options.subscription.name }, this.leases.size);
  }
}
