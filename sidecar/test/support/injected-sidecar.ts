// The sidecar an injection adds, read back from its JSON Patch: what the API server
// would put in the pod, not the injector's settings run through sidecarContainer again;
// and the AdmissionReview an injection is decided on.
import { type AdmissionRequest, parseAdmissionReview } from '../../src/k8s/injector/admission-review.ts';
import type { PatchOperation } from '../../src/k8s/injector/pod-patch.ts';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; fieldRef?: { fieldPath: string } };
}

export interface InjectedSidecar {
  name: string;
  args: string[];
  env: EnvVar[];
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  [field: string]: unknown;
}

/** The operations of an admission response's patch (base64 JSON, as the API server gets it). */
export const patchOf = (patch: string | undefined): PatchOperation[] =>
  JSON.parse(Buffer.from(patch ?? '', 'base64').toString('utf8'));

/** The sidecar container the patch adds: the first init container, whether the pod had others or not. */
export function sidecarOf(patch: PatchOperation[]): InjectedSidecar {
  for (const { path, value } of patch) {
    if (path === '/spec/initContainers') return (value as InjectedSidecar[])[0] as InjectedSidecar;
    if (path === '/spec/initContainers/0') return value as InjectedSidecar;
  }
  throw new Error(`the patch adds no sidecar: ${patch.map(({ path }) => path).join(', ')}`);
}

/**
 * The AdmissionReview the API server sends for `object`, as sent: a pod's CREATE, uid c0ffee, in namespace shop;
 * `request` replaces any of those fields of its request.
 */
export const admissionReviewBody = (object: unknown, request: Record<string, unknown> = {}) => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'c0ffee',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    operation: 'CREATE',
    namespace: 'shop',
    object,
    ...request,
  },
});

/** admissionReviewBody(), parsed as the injector parses it. */
export const admissionReview = (object: unknown, request: Record<string, unknown> = {}): AdmissionRequest =>
  parseAdmissionReview(admissionReviewBody(object, request));
