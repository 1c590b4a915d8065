// One kind of Outrigger resource, listed and watched in one namespace for one
// app id (fieldSelector spec.appId, the CRD's selectable field), kept in a
// cache by name. The loop is client-go's reflector in small: list, then watch
// from the list's resourceVersion; a watch the server ends (its timeoutSeconds)
// resumes from the last resourceVersion seen, bookmarks included; a
// resourceVersion the server no longer has (410 Gone) means list again at
// once; any other failure lists again after a capped back-off.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../telemetry/logger.ts';
import { customResourcePath, type KubeClient, type WatchEvent } from './api/client.ts';
import { isGone, isKubeApiError } from './api/errors.ts';
import { GROUP, KINDS, type Kind, VERSION } from './resources.ts';

export interface ResourceCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface OutriggerResource {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: string;
  };
  spec?: unknown;
  status?: { observedGeneration?: number; conditions?: ResourceCondition[] };
}

export interface ResourceWatchOptions {
  api: KubeClient;
  namespace: string;
  appId: string;
  kind: Kind;
  /** Any add, change of spec or delete, and each new listing; read the current set with list(). */
  onChange: () => void;
  logger: Logger;
  /** How long the API server keeps each watch open; by default a random 240-360 s (tests use a few). */
  watchTimeoutSeconds?: number;
}

const RESTART_INITIAL_MS = 250;
const RESTART_MAX_MS = 30_000;
/** A watch the server ends sooner than this is resumed only after the rest of it: never a tight loop. */
const MIN_WATCH_MS = 1_000;

/** Random, so that the replicas of an app, started together, do not all come back to the API server together. */
const watchTimeoutSeconds = () => 240 + Math.floor(Math.random() * 121);

interface List {
  items: OutriggerResource[];
  metadata: { resourceVersion?: string };
}

export class ResourceWatch {
  readonly kind: Kind;
  private readonly options: ResourceWatchOptions;
  private readonly path: string;
  private readonly fieldSelector: string;
  private cache = new Map<string, OutriggerResource>();
  private restartMs = RESTART_INITIAL_MS;
  private abort: AbortController | undefined;
  private running: Promise<void> = Promise.resolve();
  /** True once a list has succeeded: from then on list() is the truth (or a recent one). */
  synced = false;
  detail = 'not listed yet';

  constructor(options: ResourceWatchOptions) {
    this.options = options;
    this.kind = options.kind;
    const { namespace, appId, kind } = options;
    this.path = customResourcePath({ group: GROUP, version: VERSION, namespace, plural: KINDS[kind].plural });
    this.fieldSelector = `spec.appId=${appId}`;
  }

  /** Lists, then watches; resolves after the first list (or its failure, after which it keeps trying). */
  async start(): Promise<void> {
    if (this.abort !== undefined) return;
    const abort = new AbortController();
    this.abort = abort;
    const listed = Promise.withResolvers<void>();
    this.running = this.run(abort.signal, listed.resolve);
    await Promise.race([listed.promise, this.running]);
  }

  list(): readonly OutriggerResource[] {
    return [...this.cache.values()];
  }

  async stop(): Promise<void> {
    this.abort?.abort();
    await this.running;
    this.abort = undefined;
  }

  /** Until stopped: list, watch, and again. `listed` is called after the first list, whether it worked or not. */
  private async run(signal: AbortSignal, listed: () => void): Promise<void> {
    let resourceVersion: string | undefined;
    while (!signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          resourceVersion = await this.relist(signal);
          listed();
        }
        resourceVersion = await this.watch(resourceVersion, signal);
      } catch (error) {
        if (signal.aborted) break;
        if (resourceVersion !== undefined && isGone(error)) {
          // Compacted past where this watch was: only a new list says what is there now.
          this.options.logger.debug({ kind: this.kind, err: error }, 'resourceVersion too old; listing again');
        } else {
          const waitMs = this.failed(error);
          listed();
          await sleep(waitMs, undefined, { signal, ref: false }).catch(() => undefined);
        }
        resourceVersion = undefined;
      }
    }
  }

  /** Replaces the cache with a new list; returns the resourceVersion to watch from. */
  private async relist(signal: AbortSignal): Promise<string> {
    const list = await this.options.api.get<List>(this.path, { fieldSelector: this.fieldSelector }, signal);
    this.cache = new Map(list.items.map((item) => [item.metadata.name, item]));
    this.synced = true;
    this.detail = 'watching';
    this.options.onChange();
    return list.metadata.resourceVersion ?? '';
  }

  /** One watch, until the server ends it; returns the last resourceVersion it saw. */
  private async watch(from: string, signal: AbortSignal): Promise<string> {
    let resourceVersion = from;
    const started = Date.now();
    const query = {
      fieldSelector: this.fieldSelector,
      resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: this.options.watchTimeoutSeconds ?? watchTimeoutSeconds(),
    };
    const onEvent = ({ type, object }: WatchEvent<OutriggerResource>) => {
      resourceVersion = object.metadata.resourceVersion ?? resourceVersion;
      if (type === 'BOOKMARK') return; // nothing changed; only where to resume from
      const before = this.cache.get(object.metadata.name);
      if (type === 'DELETED') this.cache.delete(object.metadata.name);
      else this.cache.set(object.metadata.name, object);
      // Kept (the status writer compares with it), but only its status changed, as the sidecars' own writes do.
      if (type === 'MODIFIED' && sameGeneration(before, object)) return;
      this.options.onChange();
    };
    // Accepted by the server: whatever failed before works again, so the next failure starts the back-off afresh.
    const onOpen = () => {
      this.restartMs = RESTART_INITIAL_MS;
      this.detail = 'watching';
    };
    await this.options.api.watch(this.path, query, onEvent, signal, onOpen);
    const lasted = Date.now() - started;
    if (lasted < MIN_WATCH_MS) await sleep(MIN_WATCH_MS - lasted, undefined, { signal, ref: false });
    return resourceVersion;
  }

  /** Reports the failure; returns how long to wait before trying again (the back-off, doubled for next time). */
  private failed(error: unknown): number {
    const message = describe(error);
    this.detail = `retrying in ${this.restartMs} ms: ${message}`;
    const code = isKubeApiError(error) ? error.code : undefined;
    if (!this.synced && (code === 403 || code === 404)) {
      // No permission (the namespace is not in the chart's sidecar.rbac.namespaces) or no CRDs: an app that
      // does not use resources must still become ready. It has none, as far as this sidecar can know.
      this.synced = true;
      this.detail = `none (${message}; retrying in ${this.restartMs} ms)`;
    }
    this.options.logger.warn(
      { kind: this.kind, err: error, retryInMs: this.restartMs },
      'watching resources failed; keeping the last known ones',
    );
    const waitMs = this.restartMs;
    this.restartMs = Math.min(this.restartMs * 2, RESTART_MAX_MS);
    return waitMs;
  }
}

/**
 * True when `after` has the spec `before` had: the API server bumps
 * metadata.generation on every change of the spec of a custom resource with a
 * status subresource (ours have one), not on changes of its status, labels or annotations.
 */
function sameGeneration(before: OutriggerResource | undefined, after: OutriggerResource): boolean {
  const generation = after.metadata.generation;
  return generation !== undefined && before?.metadata.generation === generation;
}

function describe(error: unknown): string {
  if (isKubeApiError(error)) return `${error.code} ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
