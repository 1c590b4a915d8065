// Every configured subscription at work: its consumer on the broker, push or
// pull delivery, its inbox, and app health gating for the push ones. Owns
// their state (for readiness and metadata) and their graceful stop.
import type { Broker, Consumer, DeadLetterStore, SubscriptionQueue } from '../broker/broker.ts';
import { subscriptionQueue } from '../broker/subscription-queue.ts';
import type { Config, Subscription } from '../config/schema.ts';
import type { HealthCheck } from '../health/readiness.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { AppClient } from './app-client.ts';
import { AppHealth } from './app-health.ts';
import { Inbox } from './inbox.ts';
import { PullQueue } from './pull-queue.ts';
import { PushDispatcher } from './push-dispatcher.ts';
import type { Settler } from './settle.ts';

export interface ActiveSubscription {
  config: Subscription;
  queue: SubscriptionQueue;
  consumer: Consumer;
  deadLetters: DeadLetterStore;
  /** Pull subscriptions only. */
  pull?: PullQueue;
  push?: PushDispatcher;
}

export interface SubscriptionsOptions {
  config: Config;
  broker: Broker;
  metrics: Metrics;
  logger: Logger;
}

export class Subscriptions {
  private readonly active = new Map<string, ActiveSubscription>();
  private readonly client: AppClient | undefined;
  readonly appHealth: AppHealth | undefined;
  private readonly options: SubscriptionsOptions;
  private stopping = false;
  private started = false;
  /** The hot reload in progress: the next one, and stop(), wait for it. */
  private applying: Promise<void> = Promise.resolve();

  constructor(options: SubscriptionsOptions) {
    this.options = options;
    const { config, metrics, logger } = options;
    const pushes = config.subscriptions.filter((sub) => sub.mode === 'push');
    const { port, host } = config.app;
    if (port !== undefined) {
      this.client = new AppClient({
        host,
        port,
        // Subscription resources may add pushes later: then each one's concurrency bounds its connections.
        connections: config.kubernetes.watch ? undefined : pushes.reduce((sum, sub) => sum + sub.concurrency, 0) + 1,
        appToken: config.auth.appToken,
      });
      this.appHealth = new AppHealth({
        client: this.client,
        host,
        port,
        healthPath: config.app.healthPath,
        intervalMs: config.app.healthInterval,
        logger,
        metrics,
      });
    } else {
      metrics.appHealthy.set(1);
    }
    metrics.onScrape(() => {
      for (const { config: sub, consumer } of this.active.values()) {
        metrics.subscriptionConsuming.set({ subscription: sub.name }, consumer.state === 'consuming' ? 1 : 0);
      }
    });
  }

  /** Readiness: every subscription consuming, or paused only because the app is unhealthy. */
  readonly health: HealthCheck = {
    name: 'subscriptions',
    check: () => {
      const problems = [...this.active.values()]
        .filter(
          ({ consumer }) => !(consumer.state === 'consuming' || (consumer.state === 'paused' && !this.appHealthy)),
        )
        .map(({ config, consumer }) => `${config.name}: ${consumer.state} (${consumer.detail})`);
      return {
        ok: problems.length === 0,
        detail: problems.length === 0 ? `${this.active.size} consuming` : problems.join('; '),
      };
    },
  };

  private get appHealthy(): boolean {
    return this.appHealth?.isHealthy ?? true;
  }

  /** Declares every subscription's queues and starts delivery (push waits for a healthy app). */
  start(): void {
    this.started = true;
    for (const sub of this.options.config.subscriptions) this.startOne(sub);
    this.appHealth?.onChange((healthy) => this.gate(healthy, 'the app is unhealthy'));
    this.appHealth?.start();
  }

  /** The subscriptions at work now, from the file and (with Kubernetes) from Subscription resources. */
  list(): Subscription[] {
    if (!this.started) return this.options.config.subscriptions;
    return [...this.active.values()].map(({ config }) => config);
  }

  /**
   * Hot reload: makes `desired` the set at work. A new subscription starts
   * consuming; a removed one stops taking messages, lets its pushes in flight
   * finish (within the shutdown grace period) and hands back the rest; a
   * changed one does both, in that order. Calls run one after another.
   */
  apply(desired: readonly Subscription[]): Promise<void> {
    const run = this.applying.then(() => this.applyNow(desired));
    this.applying = run.catch(() => {});
    return run;
  }

  private async applyNow(desired: readonly Subscription[]): Promise<void> {
    if (this.stopping) return;
    const wanted = new Map(desired.map((sub) => [sub.name, sub]));
    const leaving = [...this.active.values()].filter(({ config }) => {
      const next = wanted.get(config.name);
      return next === undefined || !sameSubscription(next, config);
    });
    const deadline = Date.now() + this.options.config.shutdown.grace;
    await Promise.all(
      leaving.map(async (entry) => {
        this.active.delete(entry.config.name);
        this.options.metrics.subscriptionConsuming.remove({ subscription: entry.config.name });
        await stopDelivery(entry, deadline);
        this.options.logger.info({ subscription: entry.config.name }, 'subscription stopped');
      }),
    );
    if (this.stopping) return; // shutdown began while the old ones stopped: start nothing new
    for (const sub of desired) {
      if (this.active.has(sub.name)) continue;
      this.startOne(sub);
      this.options.logger.info({ subscription: sub.name, topic: sub.topic }, 'subscription started');
    }
  }

  private startOne(sub: Subscription): void {
    const { config, broker, metrics, logger } = this.options;
    const spec = subscriptionQueue(sub);
    const inbox = new Inbox({ windowMs: sub.inbox.window, maxIds: sub.inbox.maxIds });
    const settler: Settler = { retry: sub.retry, deadLetter: sub.deadLetter, maxDelayMs: broker.maxDelayMs };
    const deadLetters = broker.deadLetters(spec);
    const messageParent = config.tracing.messageParent;
    if (sub.mode === 'pull') {
      const pull = new PullQueue({ subscription: sub, inbox, settler, metrics, logger, messageParent });
      const consumer = broker.consume(spec, pull.accept);
      this.active.set(sub.name, { config: sub, queue: spec, consumer, deadLetters, pull });
      return;
    }
    if (this.client === undefined) throw new Error(`push subscription "${sub.name}" without an app port`);
    const push = new PushDispatcher({
      subscription: sub,
      client: this.client,
      inbox,
      settler,
      metrics,
      logger,
      onAppUnreachable: () => this.appUnreachable(),
      messageParent,
    });
    const consumer = broker.consume(spec, push.accept);
    // The queue is declared at once, so messages wait for the app; taking them waits for its health.
    if (!this.appHealthy) consumer.pause('waiting for the app to become healthy');
    this.active.set(sub.name, { config: sub, queue: spec, consumer, deadLetters, push });
  }

  /** Push consumers take messages only while the app can take them. */
  private gate(healthy: boolean, reason: string): void {
    if (this.stopping) return;
    for (const { consumer, push } of this.active.values()) {
      if (push === undefined) continue;
      if (healthy) consumer.resume();
      else {
        consumer.pause(reason);
        push.releaseWaiting();
      }
    }
  }

  /** A push found the app's port closed: pause at once, and resume when a fresh check passes. */
  private appUnreachable(): void {
    if (this.appHealth === undefined) return;
    this.gate(false, 'the app refused a connection; checking its health');
    this.appHealth.recheck();
  }

  get(name: string): ActiveSubscription | undefined {
    return this.active.get(name);
  }

  /**
   * Shutdown: stop taking messages, let pushes in flight finish until
   * `deadline`, hand back everything else (no attempt counted), close the consumers.
   */
  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    this.appHealth?.stop();
    await this.applying;
    await Promise.all([...this.active.values()].map((entry) => stopDelivery(entry, deadline)));
    await this.client?.close();
  }
}

/** Stops taking messages, lets pushes in flight finish until `deadline`, hands back the rest, closes the consumer. */
async function stopDelivery({ consumer, push, pull }: ActiveSubscription, deadline: number): Promise<void> {
  consumer.pause('shutting down');
  if (push !== undefined) await push.stop(deadline);
  if (pull !== undefined) await pull.stop();
  await consumer.close();
}

/** Parsed subscriptions come out of one schema, so their fields are always in the same order. */
const sameSubscription = (a: Subscription, b: Subscription) => JSON.stringify(a) === JSON.stringify(b);
