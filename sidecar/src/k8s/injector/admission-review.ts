// AdmissionReview admission.k8s.io/v1: what the API server sends and what it
// expects back. A body that is not a review cannot be answered inside one
// (there is no uid to echo), so it gets a plain 400 problem instead.
import { z } from 'zod';
import { ProblemError } from '../../api/problems.ts';
import { formatPath } from '../../config/load.ts';

const AdmissionReviewSchema = z.looseObject({
  apiVersion: z.literal('admission.k8s.io/v1', { error: 'expected "admission.k8s.io/v1"' }),
  kind: z.literal('AdmissionReview', { error: 'expected "AdmissionReview"' }),
  request: z.looseObject(
    {
      uid: z.string({ error: 'expected a string' }).min(1, { error: 'expected a non-empty string' }),
      kind: z.looseObject(
        { group: z.string(), version: z.string(), kind: z.string() },
        { error: 'expected a GroupVersionKind' },
      ),
      operation: z.string({ error: 'expected a string' }),
      namespace: z.string().optional(),
      object: z.unknown(),
    },
    { error: "expected the review's request" },
  ),
});

export type AdmissionRequest = z.infer<typeof AdmissionReviewSchema>['request'];

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of the JSON Patch */
  patch?: string;
  status?: { code: number; message: string };
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** The review's request; a ProblemError (400 REQUEST_INVALID) naming the first wrong field otherwise. */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  const result = AdmissionReviewSchema.safeParse(body);
  if (result.success) return result.data.request;
  const issue = result.error.issues[0];
  const field = issue === undefined ? '' : formatPath(issue.path);
  const message = issue === undefined ? 'invalid' : issue.message;
  throw new ProblemError(
    'REQUEST_INVALID',
    `not an AdmissionReview admission.k8s.io/v1: ${field === '' ? '' : `${field}: `}${message}`,
  );
}

export const reviewOf = (response: AdmissionResponse): AdmissionReview => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response,
});
