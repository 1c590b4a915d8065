// One kind of Outrigger resource, listed and watched in one namespace for one
// app id (fieldSelector spec.appId, the CRD's selectable field). client-node's
// ListWatch keeps the cache, resumes from the last resourceVersion and lists
// again when the API server says it is too old (410 Gone); other errors end
// its watch, so this restarts it with a capped back-off.
import { CustomObjectsApi, type KubeConfig, type KubernetesObject, ListWatch, Watch } from '@kubernetes/client-node';
import type { Logger } from '../telemetry/logger.ts';
import { GROUP, KINDS, type Kind, VERSION } from './resources.ts';

export interface ResourceCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface OutriggerResource extends KubernetesObject {
  metadata: { name: string; namespace?: string; generation?: number; resourceVersion?: string };
  spec?: unknown;
  status?: { observedGeneration?: number; conditions?: ResourceCondition[] };
}

export interface ResourceWatchOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  appId: string;
  kind: Kind;
  /** Any add, change or delete; read the current set with list(). */
  onChange: () => void;
  logger: Logger;
}

const RESTART_INITIAL_MS = 250;
const RESTART_MAX_MS = 30_000;

export class ResourceWatch {
  readonly kind: Kind;
  private readonly options: ResourceWatchOptions;
  private readonly cache: ListWatch<OutriggerResource>;
  private restartMs = RESTART_INITIAL_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private failed = false;
  /** True once a list has succeeded: from then on list() is the truth (or a recent one). */
  synced = false;
  detail = 'not listed yet';

  constructor(options: ResourceWatchOptions) {
    this.options = options;
    this.kind = options.kind;
    const { kubeConfig, namespace, appId, kind } = options;
    const plural = KINDS[kind].plural;
    const api = kubeConfig.makeApiClient(CustomObjectsApi);
    const fieldSelector = `spec.appId=${appId}`;
    const list = async () => {
      const result = (await api.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural,
        fieldSelector,
      })) as { items: OutriggerResource[]; metadata: { resourceVersion?: string } };
      this.synced = true;
      return result;
    };
    const path = `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${plural}`;
    this.cache = new ListWatch(path, new Watch(kubeConfig), list, false, undefined, fieldSelector);
    this.cache.on('change', () => this.options.onChange());
    this.cache.on('error', (error: unknown) => this.restart(error));
  }

  /** Lists, then watches; resolves after the first list (or its failure, after which it keeps trying). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.watch();
  }

  /** ListWatch.start() resolves once the watch request has been answered; an error in between has been reported. */
  private async watch(): Promise<void> {
    this.failed = false;
    await this.cache.start();
    if (this.failed || this.stopped) return;
    this.restartMs = RESTART_INITIAL_MS;
    this.detail = 'watching';
  }

  list(): readonly OutriggerResource[] {
    return this.cache.list(this.options.namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await this.cache.stop();
  }

  private restart(error: unknown): void {
    if (this.stopped) return;
    this.failed = true;
    const message = describe(error);
    this.detail = `retrying in ${this.restartMs} ms: ${message}`;
    const code = (error as { code?: unknown }).code;
    if (!this.synced && (code === 403 || code === 404)) {
      // No permission (the namespace is not in the chart's sidecar.rbac.namespaces) or no CRDs: an app that
      // does not use resources must still become ready. It has none, as far as this sidecar can know.
      this.synced = true;
      this.detail = `none (${message}; retrying in ${this.restartMs} ms)`;
    }
    this.options.logger.warn(
      { kind: this.kind, error: message, retryInMs: this.restartMs },
      'watching resources failed; keeping the last known ones',
    );
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (!this.stopped) void this.watch();
    }, this.restartMs);
    this.restartTimer.unref();
    this.restartMs = Math.min(this.restartMs * 2, RESTART_MAX_MS);
  }
}

function describe(error: unknown): string {
  const { code, body, message } = error as { code?: number; body?: unknown; message?: string };
  if (typeof code === 'number' && typeof body === 'string') {
    try {
      return `${code} ${(JSON.parse(body) as { message?: string }).message ?? ''}`.trim();
    } catch {
      return `${code}`;
    }
  }
  return message ?? String(error);
}
