// Push delivery for one subscription: messages from its consumer go to the
// app's route with up to `concurrency` in flight (the rest wait, up to the
// prefetch), and the app's answer decides each message's fate (outcome.ts).
// Retries are re-published into the delay cascade, so they wait in the
// broker, not here.
import { context, type Span, trace } from '@opentelemetry/api';
import type { Delivery } from '../broker/broker.ts';
import type { Subscription } from '../config/schema.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import {
  endHttpSpan,
  endSpan,
  type MessageParent,
  startHttpClient,
  startProcess,
  withSpan,
} from '../telemetry/spans.ts';
import type { AppClient } from './app-client.ts';
import type { Inbox } from './inbox.ts';
import { verdictOf } from './outcome.ts';
import { pushHeaders } from './push-headers.ts';
import { type Settler, settleFailure } from './settle.ts';

export interface PushDispatcherOptions {
  subscription: Subscription;
  client: AppClient;
  inbox: Inbox;
  settler: Settler;
  metrics: Metrics;
  logger: Logger;
  /** The app refused the connection: it is not there (restarting, shutting down). */
  onAppUnreachable?: () => void;
  /** How each delivery's span relates to the producer's (config `tracing.messageParent`). */
  messageParent: MessageParent;
}

export class PushDispatcher {
  private readonly waiting: Delivery[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  /** Aborts the pushes still running when the grace period of a shutdown ends. */
  private readonly abort = new AbortController();
  private stopping = false;
  private readonly options: PushDispatcherOptions;
  private readonly log: Logger;

  constructor(options: PushDispatcherOptions) {
    this.options = options;
    this.log = options.logger.child({ subscription: options.subscription.name });
  }

  /** The consumer's callback: push it now, or once one of the pushes in flight is done. */
  readonly accept = (delivery: Delivery): void => {
    if (this.stopping) {
      void delivery.release();
      this.options.metrics.deliveries.inc({ subscription: this.options.subscription.name, outcome: 'released' });
      return;
    }
    this.waiting.push(delivery);
    this.pump();
  };

  /** Hands back what waits here (not yet pushed); pushes in flight finish. */
  releaseWaiting(): void {
    const { metrics, subscription } = this.options;
    for (const delivery of this.waiting.splice(0)) {
      void delivery.release();
      metrics.deliveries.inc({ subscription: subscription.name, outcome: 'released' });
    }
  }

  /**
   * Shutdown: take nothing new, hand back what waits, let pushes in flight
   * finish until `deadline`, then abort them (their messages go back to the queue).
   */
  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    this.releaseWaiting();
    const timer = setTimeout(() => this.abort.abort(), Math.max(0, deadline - Date.now()));
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
    clearTimeout(timer);
  }

  /**
   * Starts waiting deliveries while there is room. One the app already processed
   * (a copy of it may have waited here while the first was acked) is acked instead.
   */
  private pump(): void {
    const { inbox, metrics, subscription } = this.options;
    while (this.inFlight.size < subscription.concurrency) {
      const next = this.waiting.shift();
      if (next === undefined) return;
      if (inbox.absorb(next)) metrics.deliveries.inc({ subscription: subscription.name, outcome: 'duplicate' });
      else this.run(next);
    }
  }

  private run(delivery: Delivery): void {
    const running = this.push(delivery).finally(() => {
      this.inFlight.delete(running);
      this.options.metrics.deliveriesInFlight.set({ subscription: this.options.subscription.name }, this.inFlight.size);
      this.pump();
    });
    this.inFlight.add(running);
    this.options.metrics.deliveriesInFlight.set({ subscription: this.options.subscription.name }, this.inFlight.size);
  }

  /** One delivery under its `process` span, which ends with the delivery's outcome. */
  private async push(delivery: Delivery): Promise<void> {
    const { subscription, messageParent } = this.options;
    const span = startProcess(delivery, subscription, messageParent);
    try {
      const outcome = await withSpan(span, () => this.deliver(delivery, span));
      endSpan(span, { 'outrigger.outcome': outcome }, outcome === 'acked' ? undefined : outcome);
    } catch (error) {
      endSpan(span, { 'error.type': 'settle_failed' }, (error as Error).message);
      throw error;
    }
  }

  private async deliver(delivery: Delivery, span: Span | undefined): Promise<string> {
    const { subscription, client, inbox, metrics, settler } = this.options;
    const labels = { subscription: subscription.name };
    const started = performance.now();
    const path = subscription.route as string;
    const headers = pushHeaders(delivery, subscription.name);
    // The push is a child of the delivery's process span.
    const call =
      span === undefined
        ? undefined
        : startHttpClient(trace.setSpan(context.active(), span), client.peer, { method: 'POST', path }, headers);
    const result = await client.push({
      path,
      body: delivery.body,
      headers,
      timeoutMs: subscription.timeout,
      signal: this.abort.signal,
    });
    if (call !== undefined) {
      endHttpSpan(
        call,
        result.kind === 'failed'
          ? { errorType: result.timedOut ? 'timeout' : 'connect_error', message: result.error }
          : { status: result.status },
      );
    }
    const verdict = verdictOf(result);
    metrics.deliveryDuration.observe(
      { ...labels, result: result.kind === 'answered' ? `${Math.floor(result.status / 100)}xx` : 'error' },
      (performance.now() - started) / 1000,
    );
    if (verdict.action === 'ack') {
      inbox.remember(delivery.id);
      await delivery.ack();
      metrics.deliveries.inc({ ...labels, outcome: 'acked' });
      return 'acked';
    }
    const refused = result.kind === 'failed' && result.error.startsWith('ECONNREFUSED');
    if ((this.stopping || refused) && verdict.action === 'retry') {
      // The app or the sidecar is going away: not the message's fault, so no attempt is counted.
      // A refused connection also stops delivery until the app's health check passes again.
      if (refused) this.options.onAppUnreachable?.();
      await delivery.release();
      metrics.deliveries.inc({ ...labels, outcome: 'released' });
      return 'released';
    }
    const outcome = await settleFailure(settler, delivery, verdict);
    metrics.deliveries.inc({ ...labels, outcome });
    this.log[outcome === 'retried' ? 'debug' : 'warn'](
      { id: delivery.id, attempt: delivery.attempt, outcome, err: verdict.error },
      'delivery failed',
    );
    return outcome;
  }
}
