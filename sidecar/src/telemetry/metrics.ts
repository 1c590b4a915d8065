// The sidecar's Prometheus registry: process metrics plus the sidecar's own
// series. Names follow Prometheus conventions (outrigger_ prefix, base units,
// _total for counters); labels are bounded (route patterns, never raw paths;
// topics, which the app names, up to TOPIC_LABEL_LIMIT).
// The series updated for every request, message and outbound call are
// HotCounter/HotHistogram (hot-series.ts says why); the rest are prom-client's.
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { AppMetrics } from './app-metrics.ts';
import { BoundedLabel, HotCounter, HotHistogram } from './hot-series.ts';

/** Topics with series of their own; publishes to any other count under TOPIC_OVERFLOW. */
export const TOPIC_LABEL_LIMIT = 1_000;
/** Not a topic name: those start with a letter or digit. */
export const TOPIC_OVERFLOW = '_other';

export class Metrics {
  readonly registry = new Registry();
  /** What the app sends to POST /v1/metrics: a registry of its own, shown after the sidecar's series. */
  readonly app = new AppMetrics();

  readonly buildInfo = new Gauge({
    name: 'outrigger_build_info',
    help: 'Always 1; labels carry the sidecar version and app id',
    labelNames: ['version', 'app_id'] as const,
    registers: [this.registry],
  });

  readonly brokerConnected = new Gauge({
    name: 'outrigger_broker_connected',
    help: '1 while the sidecar holds an open connection to the broker',
    registers: [this.registry],
  });

  readonly brokerConnects = new Counter({
    name: 'outrigger_broker_connects_total',
    help: 'Broker connections established (the first one and every recovery)',
    registers: [this.registry],
  });

  readonly brokerConnectFailures = new Counter({
    name: 'outrigger_broker_connect_failures_total',
    help: 'Failed attempts to connect to the broker',
    registers: [this.registry],
  });

  readonly ready = new Gauge({
    name: 'outrigger_ready',
    help: '1 while every readiness check passes',
    registers: [this.registry],
  });

  /** The app names its topics, as many as it likes: the first TOPIC_LABEL_LIMIT get series of their own. */
  private readonly topics = new BoundedLabel('topic', TOPIC_LABEL_LIMIT, TOPIC_OVERFLOW);

  readonly publishes = new HotCounter({
    name: 'outrigger_publishes_total',
    help: "Publishes by topic and outcome (routed, unroutable, duplicate, backpressure, broker_unavailable): the publish API's and the outbox relay's",
    labelNames: ['topic', 'outcome'] as const,
    bounded: this.topics,
    registers: [this.registry],
  });

  readonly publishDuration = new HotHistogram({
    name: 'outrigger_publish_duration_seconds',
    help: "From the publish request (or the outbox relay's send) to the broker confirm, by topic",
    labelNames: ['topic'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    bounded: this.topics,
    registers: [this.registry],
  });

  readonly apiRequestDuration = new HotHistogram({
    name: 'outrigger_api_request_duration_seconds',
    help: 'App API requests by route pattern, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly deliveries = new HotCounter({
    name: 'outrigger_deliveries_total',
    help: 'Messages settled by subscription and outcome (acked, retried, dead_lettered, released, duplicate, dropped)',
    labelNames: ['subscription', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly deliveryDuration = new HotHistogram({
    name: 'outrigger_delivery_duration_seconds',
    help: "One push to the app, from the request to the app's answer, by subscription and result class",
    labelNames: ['subscription', 'result'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly deliveriesInFlight = new Gauge({
    name: 'outrigger_deliveries_in_flight',
    help: 'Pushes waiting for the app, or pulled messages under lease, by subscription',
    labelNames: ['subscription'] as const,
    registers: [this.registry],
  });

  readonly subscriptionConsuming = new Gauge({
    name: 'outrigger_subscription_consuming',
    help: '1 while the subscription has a consumer on its queue',
    labelNames: ['subscription'] as const,
    registers: [this.registry],
  });

  readonly appHealthy = new Gauge({
    name: 'outrigger_app_healthy',
    help: "1 while the app's health check passes (always 1 when none is configured)",
    registers: [this.registry],
  });

  // Outbound calls (ambassador): labels are the target's name, one of the verbs the proxy forwards,
  // the status sent to the app (or the sidecar's error code) and bounded outcomes; never a path.
  readonly outboundRequests = new HotCounter({
    name: 'outrigger_outbound_requests_total',
    help: 'Outbound calls by target, method and what the app got: the HTTP status, or the error code',
    labelNames: ['target', 'method', 'status'] as const,
    registers: [this.registry],
  });

  readonly outboundRequestDuration = new HotHistogram({
    name: 'outrigger_outbound_request_duration_seconds',
    help: 'One outbound call, all its attempts and back-offs included, to the end of the response',
    labelNames: ['target', 'method'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly outboundAttempts = new HotCounter({
    name: 'outrigger_outbound_attempts_total',
    help: 'Attempts sent to a target, by outcome: 1xx-5xx, connect_error, reset, timeout, aborted, error',
    labelNames: ['target', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly outboundBudgetExhausted = new Counter({
    name: 'outrigger_outbound_retries_budget_exhausted_total',
    help: "Retries not made because the target's retry budget was spent",
    labelNames: ['target'] as const,
    registers: [this.registry],
  });

  readonly outboundCircuitState = new Gauge({
    name: 'outrigger_outbound_circuit_state',
    help: "The target's circuit breaker: 0 closed, 1 half-open, 2 open",
    labelNames: ['target'] as const,
    registers: [this.registry],
  });

  readonly outboundInFlight = new Gauge({
    name: 'outrigger_outbound_in_flight',
    help: 'Outbound calls holding a bulkhead slot (sending, waiting or streaming the answer)',
    labelNames: ['target'] as const,
    registers: [this.registry],
  });

  readonly outboundQueued = new Gauge({
    name: 'outrigger_outbound_queued',
    help: "Outbound calls waiting in the target's bulkhead queue for a slot",
    labelNames: ['target'] as const,
    registers: [this.registry],
  });

  readonly outboundRejected = new Counter({
    name: 'outrigger_outbound_rejected_total',
    help: 'Outbound calls refused without being sent, by reason: bulkhead, circuit',
    labelNames: ['target', 'reason'] as const,
    registers: [this.registry],
  });

  // The outbox relay (outbox/relay.ts); its publishes also count in outrigger_publishes_total. In the registry only
  // once showOutbox() is called, by a sidecar that relays an outbox.
  readonly outboxMessages = new Counter({
    name: 'outrigger_outbox_messages_total',
    help: 'Outbox rows by outcome, once their pass committed: published (deleted), unroutable (no queue bound; parked, or deleted), parked (can never be published), failed (not confirmed; left for the next pass)',
    labelNames: ['outcome'] as const,
    registers: [],
  });

  readonly outboxLag = new Gauge({
    name: 'outrigger_outbox_lag_seconds',
    help: 'Age of the oldest pending outbox row, as last seen (0 when there was none)',
    registers: [],
  });

  readonly outboxParkedRows = new Gauge({
    name: 'outrigger_outbox_parked_rows',
    help: "Parked rows in the outbox table (every replica's: that can never be published, or that no queue took), as last counted",
    registers: [],
  });

  readonly outboxConnected = new Gauge({
    name: 'outrigger_outbox_connected',
    help: '1 while the outbox relay relays: connected, with its table and the rights it needs (its outbox check passes)',
    registers: [],
  });

  /**
   * The outbox relay's series join the registry: only a sidecar that relays an outbox shows them. Elsewhere its
   * gauges would read 0, a relay down (outrigger_outbox_connected) to any alert or dashboard.
   */
  showOutbox(): void {
    for (const metric of [this.outboxMessages, this.outboxLag, this.outboxParkedRows, this.outboxConnected]) {
      this.registry.registerMetric(metric);
    }
  }

  /** Set gauges that mirror state kept elsewhere (readiness, consumers) right before a scrape. */
  private readonly refreshers: (() => void)[] = [];

  onScrape(refresh: () => void): void {
    this.refreshers.push(refresh);
  }

  /** The Prometheus text of every series, the mirrored gauges fresh. */
  async scrape(): Promise<string> {
    for (const refresh of this.refreshers) refresh();
    return (await this.registry.metrics()) + (await this.app.scrape());
  }

  constructor(labels: { version: string; appId: string }) {
    collectDefaultMetrics({ register: this.registry });
    this.buildInfo.set({ version: labels.version, app_id: labels.appId }, 1);
  }
}
