// The parts of a Pod the injector reads, validated loosely: unknown fields
// pass through untouched, since the patch only ever adds to them.
import { z } from 'zod';

const EnvVarSchema = z.looseObject({ name: z.string() });
const ContainerSchema = z.looseObject({
  name: z.string(),
  env: z.array(EnvVarSchema).optional(),
  ports: z.array(z.looseObject({ containerPort: z.number(), name: z.string().optional() })).optional(),
});

export const PodSchema = z.looseObject({
  metadata: z
    .looseObject({
      name: z.string().optional(),
      generateName: z.string().optional(),
      namespace: z.string().optional(),
      labels: z.record(z.string(), z.string()).optional(),
      annotations: z.record(z.string(), z.string()).optional(),
      ownerReferences: z
        .array(
          z.looseObject({
            apiVersion: z.string().optional(),
            kind: z.string(),
            name: z.string(),
            controller: z.boolean().optional(),
          }),
        )
        .optional(),
    })
    .prefault({}),
  spec: z.looseObject({
    containers: z.array(ContainerSchema).min(1),
    initContainers: z.array(ContainerSchema).optional(),
    volumes: z.array(z.looseObject({ name: z.string() })).optional(),
    hostNetwork: z.boolean().optional(),
  }),
});

export type Pod = z.infer<typeof PodSchema>;
export type Container = z.infer<typeof ContainerSchema>;
