// Writes a resource's verdict as its Ready condition (status subresource),
// only when it differs from what is stored: every sidecar of the app reaches
// the same verdict, so they agree instead of fighting, and a write does not
// set off another round of writes.
import type { Logger } from '../telemetry/logger.ts';
import { customResourcePath, type KubeClient } from './api/client.ts';
import type { Verdict } from './desired-state.ts';
import type { ResourceCondition } from './resource-watch.ts';
import { GROUP, KINDS, type Kind, VERSION } from './resources.ts';

export class StatusWriter {
  private readonly api: KubeClient;
  private readonly namespace: string;
  private readonly logger: Logger;

  constructor({ api, namespace, logger }: { api: KubeClient; namespace: string; logger: Logger }) {
    this.api = api;
    this.namespace = namespace;
    this.logger = logger;
  }

  async write(kind: Kind, verdicts: readonly Verdict[]): Promise<void> {
    await Promise.all(verdicts.map((verdict) => this.writeOne(kind, verdict)));
  }

  private async writeOne(kind: Kind, { resource, ready, reason, message }: Verdict): Promise<void> {
    const generation = resource.metadata.generation;
    const stored = resource.status?.conditions?.find((condition) => condition.type === 'Ready');
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
    const others = resource.status?.conditions?.filter((c) => c.type !== 'Ready') ?? [];
    const path = customResourcePath(
      { group: GROUP, version: VERSION, namespace: this.namespace, plural: KINDS[kind].plural },
      resource.metadata.name,
      'status',
    );
    try {
      await this.api.patch(path, [
        { op: 'add', path: '/status', value: { observedGeneration: generation, conditions: [...others, condition] } },
      ]);
    } catch (error) {
      // Deleted meanwhile, or no permission: the next change tries again; the sidecar runs on either way.
      this.logger.warn(
        { kind, name: resource.metadata.name, err: error }, // pino's err serializer carries the error's code
        'cannot write the status of a resource',
      );
    }
  }
}
