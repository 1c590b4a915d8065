// Writes a resource's verdict as its Ready condition (status subresource),
// only when it differs from what is stored: every sidecar of the app reaches
// the same verdict, so they agree instead of fighting, and a write does not
// set off another round of writes.
//
// A write that fails for a reason that may pass (a conflict, throttling, a
// server error, a timeout, no connection) is tried again after a back-off,
// doubled each time up to a cap and with full jitter (anywhere up to it), so
// that a blip of the API server does not leave a stale status until the
// resource next changes, and the replicas of an app, which fail together, do
// not all retry together against a struggling API server. Before each retry the
// resource is read again: it may be gone (404, no retry), its spec may have
// changed (the watch brings it, and its own verdict), or another sidecar may
// have written the same verdict meanwhile (nothing to write). A newer verdict
// for the resource replaces the one waiting. An answer about the request
// itself (403 forbidden, 404 gone, 400, 401, 422) is not retried: the next
// change tries again. Nor is an error that is neither an answer of the API
// server nor a failed connection (a bug, say): it would fail the same forever.
import { backoffMs } from '../delivery/backoff.ts';
import { CONNECT_CODES, RESET_CODES, TIMEOUT_CODES } from '../net/error-codes.ts';
import type { Logger } from '../telemetry/logger.ts';
import { customResourcePath, type KubeClient } from './api/client.ts';
import { isKubeApiError } from './api/errors.ts';
import type { Verdict } from './desired-state.ts';
import type { OutriggerResource, ResourceCondition } from './resource-watch.ts';
import { GROUP, KINDS, type Kind, VERSION } from './resources.ts';

export interface StatusRetry {
  /** The longest wait after the first failure: 500 ms (the wait is anywhere up to it: full jitter). */
  initialMs: number;
  /** The longest wait, however many failures: 30 s (a resource then costs one read and one patch per 30 s at most). */
  maxMs: number;
}

const DEFAULT_RETRY: StatusRetry = { initialMs: 500, maxMs: 30_000 };

/**
 * No (whole) answer from the API server: no connection, a reset, a timeout (net/error-codes.ts), but not
 * UND_ERR_CLOSED, a pool this sidecar closed, on its way out. Any other code (an invalid argument,
 * ERR_INVALID_ARG_TYPE ...) is a bug, and fails the same on every try.
 */
const TRANSPORT_CODES = new Set([...CONNECT_CODES, ...RESET_CODES, ...TIMEOUT_CODES]);
TRANSPORT_CODES.delete('UND_ERR_CLOSED');

/**
 * Worth trying again: an answer of the API server with 408 timeout, 409 conflict, 429 throttled (API priority
 * and fairness) or any 5xx; or no answer, with the code of a failed connection or a timeout. Anything else (a
 * TypeError from a bug, say) is not: it would be retried forever.
 */
export function isRetryable(error: unknown): boolean {
  if (isKubeApiError(error)) {
    return error.code === 408 || error.code === 409 || error.code === 429 || error.code >= 500;
  }
  const code = error instanceof Error ? (error as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && TRANSPORT_CODES.has(code);
}

/** One resource whose verdict is being written, or waits for its next try. */
interface Slot {
  kind: Kind;
  /** Its key in the writer's slots: kind/name (the name is its verdicts' resource's). */
  key: string;
  /** The newest verdict: a write in progress for an older one goes on with this one. */
  verdict: Verdict;
  /** What to compare with and write over; undefined: read the resource first (a write failed, or landed). */
  base: OutriggerResource | undefined;
  failures: number;
  timer?: NodeJS.Timeout;
  running?: Promise<void>;
}

export class StatusWriter {
  private readonly api: KubeClient;
  private readonly namespace: string;
  private readonly logger: Logger;
  private readonly retry: StatusRetry;
  private readonly random: () => number;
  private readonly slots = new Map<string, Slot>();
  private stopped = false;

  constructor({
    api,
    namespace,
    logger,
    retry = DEFAULT_RETRY,
    random = Math.random,
  }: {
    api: KubeClient;
    namespace: string;
    logger: Logger;
    retry?: StatusRetry;
    /** The jitter's source, in [0, 1) (tests). */
    random?: () => number;
  }) {
    this.api = api;
    this.namespace = namespace;
    this.logger = logger;
    this.retry = retry;
    this.random = random;
  }

  /**
   * Writes each verdict that differs from its resource's stored status. Resolves after the first try of each;
   * a failed one that may pass is retried in the background.
   */
  async write(kind: Kind, verdicts: readonly Verdict[]): Promise<void> {
    await Promise.all(verdicts.map((verdict) => this.submit(kind, verdict)));
  }

  /** No more writes or retries; a write in progress ends without a word (its client is being closed). */
  stop(): void {
    this.stopped = true;
    for (const slot of this.slots.values()) clearTimeout(slot.timer);
    this.slots.clear();
  }

  /** How many resources have a failed write waiting to be tried again (tests). */
  get retrying(): number {
    return [...this.slots.values()].filter((slot) => slot.failures > 0).length;
  }

  private submit(kind: Kind, verdict: Verdict): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const name = verdict.resource.metadata.name;
    const key = `${kind}/${name}`;
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = { kind, key, verdict, base: verdict.resource, failures: 0 };
      this.slots.set(key, slot);
    } else {
      // The same verdict again (another change of the app's resources): its retry is coming, at its own pace.
      if (sameVerdict(slot.verdict, verdict)) return Promise.resolve();
      slot.verdict = verdict;
      slot.failures = 0;
      // A write in progress takes the new verdict when it ends; one waiting for its retry goes at once.
      if (slot.running !== undefined) return Promise.resolve();
      clearTimeout(slot.timer);
      slot.timer = undefined;
    }
    return this.run(slot);
  }

  private run(slot: Slot): Promise<void> {
    const running = this.attempt(slot).finally(() => {
      slot.running = undefined;
    });
    slot.running = running;
    return running;
  }

  /** Writes the slot's verdict, and then any newer one that came meanwhile, until done or a failure. */
  private async attempt(slot: Slot): Promise<void> {
    const done = () => {
      if (this.slots.get(slot.key) === slot) this.slots.delete(slot.key);
    };
    const log = { kind: slot.kind, name: slot.verdict.resource.metadata.name };
    for (;;) {
      if (this.stopped) return;
      const verdict = slot.verdict;
      try {
        const base = slot.base ?? (await this.read(slot));
        if (slot.verdict !== verdict) {
          // A newer verdict came during the read: write that one, not this outdated one, over a read that follows
          // it (what was just read may be of the spec before the newer verdict's).
          slot.base = undefined;
          continue;
        }
        if (base.metadata.generation !== verdict.resource.metadata.generation) {
          // Its spec changed since the verdict: the watch brings the new one, and a verdict of its own.
          return done();
        }
        await this.writeOver(slot.kind, verdict, base);
        if (slot.verdict === verdict) {
          if (slot.failures > 0) this.logger.info({ ...log, failures: slot.failures }, 'wrote the status after all');
          return done();
        }
        slot.base = undefined; // a newer verdict came meanwhile: write it over what was just written
      } catch (error) {
        if (this.stopped) return;
        slot.base = undefined; // a call that failed may still have been carried out (a timeout): read again
        if (slot.verdict !== verdict) continue; // a newer verdict came meanwhile: try it at once
        if (isKubeApiError(error) && error.code === 404) {
          // Gone: when read, or when written (deleted since it was read).
          this.logger.info(log, 'not writing the status of a resource: it was deleted');
          return done();
        }
        if (!isRetryable(error)) {
          // No permission, or the request itself is wrong: the next change tries again; the sidecar runs on.
          this.logger.warn(
            { ...log, err: error }, // pino's err serializer carries the error's code
            'cannot write the status of a resource',
          );
          return done();
        }
        slot.failures += 1;
        const retryInMs = backoffMs(
          { initial: this.retry.initialMs, max: this.retry.maxMs, multiplier: 2, jitter: 1 },
          slot.failures,
          this.random,
        );
        this.logger.warn({ ...log, err: error, retryInMs }, 'cannot write the status of a resource');
        slot.timer = setTimeout(() => {
          slot.timer = undefined;
          void this.run(slot);
        }, retryInMs);
        slot.timer.unref();
        return;
      }
    }
  }

  /** The resource as stored now (a KubeApiError 404 when it is gone). */
  private read(slot: Slot): Promise<OutriggerResource> {
    return this.api.get<OutriggerResource>(this.pathOf(slot.kind, slot.verdict.resource.metadata.name));
  }

  /** Patches the verdict's Ready condition over `base`'s status, unless `base` already has it. */
  private async writeOver(kind: Kind, { ready, reason, message }: Verdict, base: OutriggerResource): Promise<void> {
    const generation = base.metadata.generation;
    const stored = base.status?.conditions?.find((condition) => condition.type === 'Ready');
    const status = ready ? 'True' : 'False';
    if (
      stored !== undefined &&
      stored.status === status &&
      stored.reason === reason &&
      stored.message === message &&
      stored.observedGeneration === generation
    ) {
      return;
    }
    const condition: ResourceCondition = {
      type: 'Ready',
      status,
      reason,
      message,
      lastTransitionTime:
        stored !== undefined && stored.status === status ? stored.lastTransitionTime : new Date().toISOString(),
      ...(generation === undefined ? {} : { observedGeneration: generation }),
    };
    const others = base.status?.conditions?.filter((c) => c.type !== 'Ready') ?? [];
    await this.api.patch(this.pathOf(kind, base.metadata.name, 'status'), [
      { op: 'add', path: '/status', value: { observedGeneration: generation, conditions: [...others, condition] } },
    ]);
  }

  private pathOf(kind: Kind, name: string, subresource?: 'status'): string {
    return customResourcePath(
      { group: GROUP, version: VERSION, namespace: this.namespace, plural: KINDS[kind].plural },
      name,
      subresource,
    );
  }
}

function sameVerdict(a: Verdict, b: Verdict): boolean {
  return (
    a.ready === b.ready &&
    a.reason === b.reason &&
    a.message === b.message &&
    a.resource.metadata.generation === b.resource.metadata.generation
  );
}
