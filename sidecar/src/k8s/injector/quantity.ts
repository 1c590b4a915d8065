// Kubernetes resource quantities ("250m", "64Mi", "1.5", "2e3"): the grammar
// of k8s.io/apimachinery's resource.Quantity, without a sign since a resource
// amount is never negative. Checked here so a bad annotation is refused by
// name, rather than by the API server's validation of the patched pod.

const QUANTITY = /^(?<number>\d+(?:\.\d*)?|\.\d+)(?<suffix>[KMGTPE]i|[eE][+-]?\d+|[mkMGTPE])?$/;

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

export const QUANTITY_HINT = 'expected a Kubernetes quantity such as "250m", "1", "64Mi" or "1Gi"';

export const isQuantity = (text: string): boolean => QUANTITY.test(text);

/** The amount in base units (cores, bytes), or undefined when `text` is not a quantity. Precise enough to compare. */
export function parseQuantity(text: string): number | undefined {
  const match = QUANTITY.exec(text);
  if (match?.groups === undefined) return undefined;
  const { number, suffix } = match.groups as { number: string; suffix?: string };
  const value = Number(number);
  if (suffix === undefined) return value;
  if (suffix in BINARY) return value * (BINARY[suffix] as number);
  if (suffix in DECIMAL) return value * (DECIMAL[suffix] as number);
  return value * 10 ** Number(suffix.slice(1));
}

/** The resources a sidecar's requests and limits may name; for each, the request may not exceed the limit. */
export const RESOURCE_NAMES = ['cpu', 'memory', 'ephemeral-storage'] as const;
export type ResourceName = (typeof RESOURCE_NAMES)[number];
type Amounts = Partial<Record<ResourceName, string>>;

/**
 * Each resource whose request is more than its limit, which Kubernetes refuses in a pod; empty when there is
 * none. Both amounts must be quantities.
 */
export function requestsOverLimits(resources: {
  requests?: Amounts | undefined;
  limits?: Amounts | undefined;
}): { name: ResourceName; request: string; limit: string }[] {
  return RESOURCE_NAMES.flatMap((name) => {
    const request = resources.requests?.[name];
    const limit = resources.limits?.[name];
    if (request === undefined || limit === undefined) return [];
    return (parseQuantity(request) as number) > (parseQuantity(limit) as number) ? [{ name, request, limit }] : [];
  });
}
