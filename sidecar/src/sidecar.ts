// The sidecar: wires configuration, broker, app API and ops port together and
// owns their lifecycle (start, graceful stop).

import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { requestCheck } from './api/auth.ts';
import { outboundProxy } from './api/outbound.ts';
import { ApiServer } from './api/server.ts';
import { buildApp } from './app.ts';
import type { Broker } from './broker/broker.ts';
import { RabbitBroker } from './broker/rabbitmq/rabbit-broker.ts';
import type { LoadedConfig } from './config/load.ts';
import type { Config } from './config/schema.ts';
import { Subscriptions } from './delivery/subscriptions.ts';
import { Readiness } from './health/readiness.ts';
import { connectCluster, KUBERNETES_CHECK, watchWithoutToken } from './k8s/cluster.ts';
import { ResourceSync } from './k8s/resource-sync.ts';
import { buildOps } from './ops/server.ts';
import { Outbound } from './outbound/outbound.ts';
import { OutboxRelay } from './outbox/relay.ts';
import { createLogger, type Logger } from './telemetry/logger.ts';
import { Metrics } from './telemetry/metrics.ts';
import { VERSION } from './version.ts';

/** Of the grace period, kept for closing the broker connection after the last delivery. */
const SHUTDOWN_MARGIN_MS = 1_000;

export interface SidecarAddresses {
  /** Base URL of the app API, e.g. http://127.0.0.1:3600 */
  api: string;
  /** Base URL of the ops port, e.g. http://127.0.0.1:9464 */
  ops: string;
}

interface SidecarParts {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  readiness: Readiness;
  broker: Broker;
  subscriptions: Subscriptions;
  outbound: Outbound;
  outbox: OutboxRelay | undefined;
  resources: ResourceSync | undefined;
  app: FastifyInstance;
  /** Where the app API listens: the outbound proxy, then `app`. */
  api: ApiServer;
  ops: FastifyInstance;
  lifecycle: { closing: boolean };
}

export class Sidecar {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly readiness: Readiness;
  readonly broker: Broker;
  readonly subscriptions: Subscriptions;
  readonly outbound: Outbound;
  /** The outbox relay, when `outbox` is configured. */
  readonly outbox: OutboxRelay | undefined;
  /** Subscription and OutboundTarget resources, when kubernetes.watch is on. */
  private readonly resources: ResourceSync | undefined;
  private readonly app: FastifyInstance;
  private readonly api: ApiServer;
  private readonly ops: FastifyInstance;
  private readonly lifecycle: { closing: boolean };

  private constructor(parts: SidecarParts) {
    this.config = parts.config;
    this.logger = parts.logger;
    this.metrics = parts.metrics;
    this.readiness = parts.readiness;
    this.broker = parts.broker;
    this.subscriptions = parts.subscriptions;
    this.outbound = parts.outbound;
    this.outbox = parts.outbox;
    this.resources = parts.resources;
    this.app = parts.app;
    this.api = parts.api;
    this.ops = parts.ops;
    this.lifecycle = parts.lifecycle;
  }

  /**
   * Throws a ConfigError when a target's secret header or TLS file cannot be resolved, or
   * kubernetes.watch is on without a cluster to watch (before anything starts).
   * `file` is the configuration file `input` was loaded from, if any: problems with its settings name it.
   * `fromEnv`, the settings the environment set: an injected pod without a ServiceAccount token
   * (k8s/cluster.ts, watchWithoutToken) runs without the watch, and its `kubernetes` check says why.
   */
  static async create(
    input: Config,
    options: {
      logger?: Logger;
      env?: NodeJS.ProcessEnv;
      file?: string | undefined;
      fromEnv?: LoadedConfig['fromEnv'];
    } = {},
  ): Promise<Sidecar> {
    const withoutWatch =
      options.fromEnv === undefined
        ? undefined
        : watchWithoutToken({ config: input, fromEnv: options.fromEnv }, options.env);
    const config = withoutWatch === undefined ? input : { ...input, kubernetes: { ...input.kubernetes, watch: false } };
    const logger = options.logger ?? createLogger(config.log.level);
    const metrics = new Metrics({ version: VERSION, appId: config.appId });
    const outbound = Outbound.create(config.targets, { metrics, logger, env: options.env }, options.file);
    const readiness = new Readiness();
    const broker = new RabbitBroker({
      url: config.broker.url,
      heartbeatMs: config.broker.heartbeat,
      reconnect: { initialMs: config.broker.reconnect.initial, maxMs: config.broker.reconnect.max },
      appId: config.appId,
      logger,
      metrics,
    });
    readiness.register(broker.health);
    const subscriptions = new Subscriptions({ config, broker, metrics, logger });
    const outbox =
      config.outbox === undefined
        ? undefined
        : new OutboxRelay({ config: config.outbox, broker, metrics, logger, appId: config.appId });
    if (outbox !== undefined) {
      readiness.register(outbox.health);
      metrics.showOutbox();
    }
    if (config.subscriptions.length > 0 || config.kubernetes.watch) readiness.register(subscriptions.health);
    let resources: ResourceSync | undefined;
    if (config.kubernetes.watch) {
      resources = new ResourceSync({
        config,
        cluster: connectCluster(config, options.env),
        subscriptions,
        outbound,
        logger,
      });
      readiness.register(resources.health);
    } else if (withoutWatch !== undefined) {
      logger.warn(
        { detail: withoutWatch },
        'running without the Kubernetes watch: the pod has no ServiceAccount token',
      );
      readiness.register({ name: KUBERNETES_CHECK, check: () => ({ ok: true, detail: withoutWatch }) });
    }
    if (subscriptions.appHealth !== undefined && config.app.healthPath !== undefined) {
      readiness.register(subscriptions.appHealth.health);
    }
    const lifecycle = { closing: false };
    const isClosing = () => lifecycle.closing;
    const checkRequest = requestCheck(config.auth.apiToken, isClosing);
    const app = await buildApp({ config, logger, broker, metrics, subscriptions, outbound, outbox, checkRequest });
    const proxy = outboundProxy({ outbound, metrics, logger, checkRequest, isClosing });
    const api = new ApiServer((request, response) => {
      if (!proxy(request, response)) app.routing(request, response);
    });
    const ops = buildOps({ readiness, metrics, logger });
    return new Sidecar({
      config,
      logger,
      metrics,
      readiness,
      broker,
      subscriptions,
      outbound,
      outbox,
      resources,
      app,
      api,
      ops,
      lifecycle,
    });
  }

  /** Listens on both ports and starts connecting to the broker (without waiting for it). */
  async start(): Promise<SidecarAddresses> {
    const { http, ops } = this.config;
    this.subscriptions.start();
    await this.broker.start();
    this.outbox?.start();
    // Not awaited: an API server that does not answer must not keep the ports closed. Readiness waits for it.
    this.resources?.start().catch((error: unknown) => {
      this.logger.error({ err: error }, 'cannot start watching Kubernetes resources');
    });
    await this.ops.listen({ host: ops.host, port: ops.port });
    await this.app.ready();
    const api = await this.api.listen(http.host, http.port);
    const addresses = { api: urlOf(api, '127.0.0.1'), ops: urlOf(this.ops.addresses() as AddressInfo[], '127.0.0.1') };
    this.logger.info(
      {
        appId: this.config.appId,
        version: VERSION,
        api: addresses.api,
        ops: addresses.ops,
        broker: this.broker.address,
      },
      'sidecar started',
    );
    return addresses;
  }

  /**
   * Stops taking requests, lets in-flight ones finish, closes the broker
   * connection and the ops port. Resolves true when all of it finished within
   * the grace period, false when the grace period ran out first.
   */
  async stop(): Promise<boolean> {
    if (this.lifecycle.closing) return true;
    this.lifecycle.closing = true;
    this.readiness.markShuttingDown();
    this.logger.info({ graceMs: this.config.shutdown.grace }, 'sidecar stopping');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), this.config.shutdown.grace);
    });
    const deadline = Date.now() + this.config.shutdown.grace;
    const finished = (async () => {
      // No more changes from Kubernetes, and deliveries first: pushes in flight finish, the rest goes back
      // to the queue, waiting pulls end. Together: a reload still being applied must see the subscriptions
      // stopping (and start nothing), not hold their stop back while it waits for old consumers to drain.
      // The outbox relay ends its pass (confirms, commit) in the meantime.
      await Promise.all([
        this.resources?.stop(),
        this.subscriptions.stop(deadline - SHUTDOWN_MARGIN_MS),
        this.outbox?.stop(deadline - SHUTDOWN_MARGIN_MS),
      ]);
      await this.api.close();
      await this.app.close();
      // After the app API: outbound calls in flight have answered; their connections close now.
      await this.outbound.close();
      await this.broker.close();
      await this.ops.close();
      return true as const;
    })();
    const clean = await Promise.race([finished, timedOut]);
    clearTimeout(timer);
    if (clean) this.logger.info('sidecar stopped');
    else this.logger.error('sidecar did not stop within the grace period');
    return clean;
  }
}

function urlOf(addresses: AddressInfo[], preferredHost: string): string {
  const chosen = addresses.find((address) => address.address === preferredHost) ?? addresses[0];
  if (chosen === undefined) throw new Error('server is not listening');
  const host = chosen.family === 'IPv6' ? `[${chosen.address}]` : chosen.address;
  return `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${chosen.port}`;
}
