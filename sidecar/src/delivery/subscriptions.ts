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

  constructor(options: SubscriptionsOptions) {
    this.options = options;
    const { config, metrics, logger } = options;
    const pushes = config.subscriptions.filter((sub) => sub.mode === 'push');
    const { port, host } = config.app;
    if (port !== undefined) {
      this.client = new AppClient({
        host,
        port,
        connections: pushes.reduce((sum, sub) => sum + sub.concurrency, 0) + 1,
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
    const { config, broker, metrics, logger } = this.options;
    for (const sub of config.subscriptions) {
      const spec = subscriptionQueue(sub);
      const inbox = new Inbox({ windowMs: sub.inbox.window, maxIds: sub.inbox.maxIds });
      const settler: Settler = { retry: sub.retry, deadLetter: sub.deadLetter, maxDelayMs: broker.maxDelayMs };
      const deadLetters = broker.deadLetters(spec);
      if (sub.mode === 'pull') {
        const pull = new PullQueue({
          subscription: sub,
          inbox,
          settler,
          metrics,
          logger,
          messageParent: config.tracing.messageParent,
        });
        const consumer = broker.consume(spec, pull.accept);
        this.active.set(sub.name, { config: sub, queue: spec, consumer, deadLetters, pull });
      } else {
        const push = new PushDispatcher({
          subscription: sub,
          client: this.client as AppClient,
          inbox,
          settler,
          metrics,
          logger,
          onAppUnreachable: () => this.appUnreachable(),
          messageParent: config.tracing.messageParent,
        });
        const consumer = broker.consume(spec, push.accept);
        // The queue is declared at once, so messages wait for the app; taking them waits for its health.
        if (!this.appHealthy) consumer.pause('waiting for the app to become healthy');
        this.active.set(sub.name, { config: sub, queue: spec, consumer, deadLetters, push });
      }
    }
    this.appHealth?.onChange((healthy) => this.gate(healthy, 'the app is unhealthy'));
    this.appHealth?.start();
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
    for (const { consumer } of this.active.values()) consumer.pause('shutting down');
    await Promise.all(
      [...this.active.values()].map(async ({ consumer, push, pull }) => {
        if (push !== undefined) await push.stop(deadline);
        if (pull !== undefined) await pull.stop();
        await consumer.close();
      }),
    );
    await this.client?.close();
  }
}
