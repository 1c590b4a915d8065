// Installs the chart's Subscription and OutboundTarget CRDs (charts/outrigger/crds/)
// into a test control plane and waits until the API server serves them.
import { readdirSync, readFileSync } from 'node:fs';
import {
  ApiextensionsV1Api,
  type KubeConfig,
  loadYaml,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { until } from './wait.ts';

const CRDS = new URL('../../../charts/outrigger/crds/', import.meta.url);

export function chartCrds(): V1CustomResourceDefinition[] {
  return (
    readdirSync(CRDS)
      .filter((file) => file.endsWith('.yaml'))
      // loadYaml maps `x-kubernetes-*` keys to the client's model; the raw YAML object would lose them on the way.
      .map((file) => loadYaml<V1CustomResourceDefinition>(readFileSync(new URL(file, CRDS), 'utf8')))
  );
}

export async function installCrds(kubeConfig: KubeConfig): Promise<void> {
  const api = kubeConfig.makeApiClient(ApiextensionsV1Api);
  for (const crd of chartCrds()) {
    await api.createCustomResourceDefinition({ body: crd });
    const name = crd.metadata?.name as string;
    await until(
      `${name} to be Established`,
      async () => {
        const read = await api.readCustomResourceDefinition({ name });
        return read.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  }
}
