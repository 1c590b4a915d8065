// The CustomResourceDefinitions of Subscription and OutboundTarget, built
// from the zod schemas (scripts/gen-crds.ts writes them into the chart;
// files.test.ts fails when the chart's copies drift from these).
import { z } from 'zod';
import { GROUP, KINDS, type Kind, VERSION } from '../resources.ts';
import { type JsonSchema, toStructural } from './structural-schema.ts';

const READY = '.status.conditions[?(@.type=="Ready")]';

const COLUMNS: Record<Kind, { name: string; type: string; jsonPath: string; priority?: number }[]> = {
  Subscription: [
    { name: 'App', type: 'string', jsonPath: '.spec.appId' },
    { name: 'Topic', type: 'string', jsonPath: '.spec.topic' },
    { name: 'Mode', type: 'string', jsonPath: '.spec.mode' },
    { name: 'Route', type: 'string', jsonPath: '.spec.route', priority: 1 },
    { name: 'Ready', type: 'string', jsonPath: `${READY}.status` },
    { name: 'Reason', type: 'string', jsonPath: `${READY}.reason`, priority: 1 },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
  OutboundTarget: [
    { name: 'App', type: 'string', jsonPath: '.spec.appId' },
    { name: 'Base URL', type: 'string', jsonPath: '.spec.baseUrl' },
    { name: 'Ready', type: 'string', jsonPath: `${READY}.status` },
    { name: 'Reason', type: 'string', jsonPath: `${READY}.reason`, priority: 1 },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
};

/** metav1.Condition, as every Kubernetes API writes it. */
const CONDITION: JsonSchema = {
  type: 'object',
  required: ['type', 'status', 'reason', 'message', 'lastTransitionTime'],
  properties: {
    type: { type: 'string', maxLength: 316 },
    status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
    reason: { type: 'string', maxLength: 1024, pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$' },
    message: { type: 'string', maxLength: 32768 },
    lastTransitionTime: { type: 'string', format: 'date-time' },
    observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
  },
};

const STATUS: JsonSchema = {
  type: 'object',
  description: 'Written by the sidecars of the app: whether the spec is valid and applied.',
  properties: {
    observedGeneration: { type: 'integer', format: 'int64', description: 'The generation the conditions describe' },
    conditions: {
      type: 'array',
      items: CONDITION,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    },
  },
};

function specSchema(kind: Kind): JsonSchema {
  const json = z.toJSONSchema(KINDS[kind].spec, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const spec = toStructural(json);
  const appId = spec.properties?.appId as JsonSchema;
  // Moving a resource to another app is a delete and a create: its status and its queues belong to one app.
  appId['x-kubernetes-validations'] = [{ rule: 'self == oldSelf', message: 'appId is immutable' }];
  return spec;
}

export function customResourceDefinition(kind: Kind) {
  const { plural, singular, shortNames } = KINDS[kind];
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'outrigger', 'app.kubernetes.io/part-of': 'outrigger' },
    },
    spec: {
      group: GROUP,
      names: { kind, listKind: `${kind}List`, plural, singular, shortNames, categories: ['outrigger'] },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          // Sidecars watch with fieldSelector=spec.appId=<their app>, so each sees only its own (Kubernetes 1.32+).
          selectableFields: [{ jsonPath: '.spec.appId' }],
          additionalPrinterColumns: COLUMNS[kind],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: `An Outrigger ${kind === 'Subscription' ? 'subscription: how messages on a topic reach an app' : 'outbound target: an external API an app calls through its sidecar'} (docs/resources.md).`,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: specSchema(kind),
                status: STATUS,
              },
              'x-kubernetes-validations': [
                {
                  rule: 'self.metadata.name.matches("^[a-z0-9][-a-z0-9.]{0,99}$")',
                  message: 'the name is used in API paths and queue names: at most 100 characters',
                },
              ],
            },
          },
        },
      ],
    },
  };
}
