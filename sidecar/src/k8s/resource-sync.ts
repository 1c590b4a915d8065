// Hot reload from Kubernetes: watches the app's Subscription and
// OutboundTarget resources, applies the set they describe (with the file's
// own entries) to the running subscriptions and targets, and writes each
// resource's Ready condition. Changes arriving together are applied together.
import type { Config } from '../config/schema.ts';
import type { Subscriptions } from '../delivery/subscriptions.ts';
import type { HealthCheck } from '../health/readiness.ts';
import type { Outbound } from '../outbound/outbound.ts';
import type { Logger } from '../telemetry/logger.ts';
import { type Cluster, KUBERNETES_CHECK } from './cluster.ts';
import { desiredSubscriptions, desiredTargets, withSecretProblems } from './desired-state.ts';
import { ResourceWatch } from './resource-watch.ts';
import { StatusWriter } from './status-writer.ts';

/** How long to gather changes that arrive together (a `kubectl apply -f dir/`) before applying them. */
const SETTLE_MS = 25;

export interface ResourceSyncOptions {
  config: Config;
  cluster: Cluster;
  subscriptions: Subscriptions;
  outbound: Outbound;
  logger: Logger;
}

export class ResourceSync {
  private readonly options: ResourceSyncOptions;
  private readonly subscriptionWatch: ResourceWatch;
  private readonly targetWatch: ResourceWatch;
  private readonly statuses: StatusWriter;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(options: ResourceSyncOptions) {
    this.options = options;
    const { cluster, config, logger } = options;
    const watch = { ...cluster, appId: config.appId, logger, onChange: () => this.schedule() };
    this.subscriptionWatch = new ResourceWatch({ ...watch, kind: 'Subscription' });
    this.targetWatch = new ResourceWatch({ ...watch, kind: 'OutboundTarget' });
    this.statuses = new StatusWriter({ ...cluster, logger });
  }

  /** Ready once both kinds have been listed: until then the app's resources are not known. */
  readonly health: HealthCheck = {
    name: KUBERNETES_CHECK,
    check: () => {
      const watches = [this.subscriptionWatch, this.targetWatch];
      const ok = watches.every((watch) => watch.synced);
      return { ok, detail: watches.map((watch) => `${watch.kind}: ${watch.detail}`).join('; ') };
    },
  };

  /** Starts both watches; resolves after the first listing (or its failure, retried in the background). */
  async start(): Promise<void> {
    await Promise.all([this.subscriptionWatch.start(), this.targetWatch.start()]);
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.statuses.stop();
    await Promise.all([this.subscriptionWatch.stop(), this.targetWatch.stop()]);
    await this.running;
    await this.options.cluster.api.close();
  }

  private schedule(delayMs = SETTLE_MS): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.running
        .then(() => this.apply())
        .catch((error: unknown) => {
          this.options.logger.error({ err: error }, 'applying Kubernetes resources failed');
        });
    }, delayMs);
  }

  private async apply(): Promise<void> {
    if (this.stopped) return;
    const { config, subscriptions, outbound, logger } = this.options;
    const subs = desiredSubscriptions(config, this.subscriptionWatch.list());
    const targets = desiredTargets(config, this.targetWatch.list());
    const secretProblems = outbound.apply(targets.targets);
    const targetVerdicts = withSecretProblems(targets.verdicts, secretProblems);
    await Promise.all([
      this.statuses.write('Subscription', subs.verdicts),
      this.statuses.write('OutboundTarget', targetVerdicts),
      subscriptions.apply(subs.subscriptions),
    ]);
    logger.debug(
      { subscriptions: subs.subscriptions.length, targets: targets.targets.length - secretProblems.size },
      'applied Kubernetes resources',
    );
  }
}
