// The injector's configuration file: what every injected sidecar gets unless a
// pod's annotations say otherwise. Every field has a default, so the file is
// optional; a bad file stops the injector with one line per problem.
import { z } from 'zod';
import { port } from '../../config/fields.ts';
import { ConfigError, describeIssue, readYaml } from '../../config/load.ts';
import { LOG_LEVELS } from '../../config/schema.ts';
import { VERSION } from '../../version.ts';
import { isQuantity, QUANTITY_HINT, RESOURCE_NAMES, type ResourceName, requestsOverLimits } from './quantity.ts';
import { INJECTED_ENV } from './sidecar-container.ts';

/** RFC 1123 subdomain: names of Secrets and ConfigMaps. */
export const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/**
 * A key of a Secret or ConfigMap, as the API server checks a secretKeyRef's (IsConfigMapKey): the characters,
 * at most 253 of them, and not ".", ".." or starting with "..". One it would refuse is refused here first.
 */
export const isSecretKey = (key: string): boolean =>
  /^[-._a-zA-Z0-9]{1,253}$/.test(key) && !key.startsWith('..') && key !== '.';
export const SECRET_KEY_RULE =
  'letters, digits, "-", "_" and "." (at most 253), not "." or ".." nor starting with ".."';

// YAML reads `cpu: 1` as a number; Kubernetes takes it, so this does too.
const quantity = () =>
  z
    .union([z.string(), z.number().transform(String)], { error: QUANTITY_HINT })
    .refine(isQuantity, { error: QUANTITY_HINT });
// The names requestsOverLimits compares, and no others.
const amounts = () =>
  z.strictObject(
    Object.fromEntries(RESOURCE_NAMES.map((name) => [name, quantity().optional()])) as Record<
      ResourceName,
      z.ZodOptional<ReturnType<typeof quantity>>
    >,
  );

const ResourcesSchema = z
  .strictObject({ requests: amounts().optional(), limits: amounts().optional() })
  .superRefine((resources, ctx) => {
    for (const { name, limit } of requestsOverLimits(resources)) {
      ctx.addIssue({ code: 'custom', path: ['requests', name], message: `must not exceed limits.${name} (${limit})` });
    }
  });
export type Resources = z.infer<typeof ResourcesSchema>;

const EnvVarSchema = z.strictObject({
  name: z
    .string({ error: 'expected a variable name' })
    .regex(ENV_NAME, { error: 'expected a variable name: letters, digits and "_", not starting with a digit' }),
  value: z.string({ error: 'expected a string (quote numbers and booleans)' }),
});

const InjectorConfigSchema = z
  .strictObject({
    image: z
      .string()
      .min(1, { error: 'expected an image reference' })
      .default(`ghcr.io/outrigger/outrigger:${VERSION}`),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
    httpPort: port().default(3600),
    opsPort: port().default(9464),
    logLevel: z.enum(LOG_LEVELS).default('info'),
    resources: ResourcesSchema.default({ requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } }),
    brokerUrlSecret: z
      .strictObject({
        name: z.string().regex(DNS_SUBDOMAIN, { error: 'expected a Secret name (a DNS subdomain)' }),
        key: z.string().refine(isSecretKey, { error: `expected a key: ${SECRET_KEY_RULE}` }),
      })
      .optional(),
    env: z.array(EnvVarSchema).default([]),
  })
  .superRefine((config, ctx) => {
    if (config.httpPort === config.opsPort) {
      ctx.addIssue({ code: 'custom', path: ['opsPort'], message: 'must differ from httpPort' });
    }
    const seen = new Set<string>();
    config.env.forEach(({ name }, index) => {
      const path = ['env', index, 'name'];
      if (seen.has(name)) ctx.addIssue({ code: 'custom', path, message: `duplicate variable "${name}"` });
      seen.add(name);
      // The broker URL may come from here when it is not from a Secret; the rest the injector sets itself.
      const fromSecret = name === 'OUTRIGGER_BROKER_URL' && config.brokerUrlSecret !== undefined;
      if ((INJECTED_ENV as readonly string[]).includes(name) && (name !== 'OUTRIGGER_BROKER_URL' || fromSecret)) {
        // Never from here: this env is every sidecar's, and a database is one app's (one relay per outbox table).
        const outbox =
          name === 'OUTRIGGER_OUTBOX_URL'
            ? ", from a pod's outrigger.dev/outbox-url-secret (each app has its own database)"
            : '';
        ctx.addIssue({ code: 'custom', path, message: `"${name}" is set by the injector${outbox}` });
      }
    });
  });

export type InjectorConfig = z.infer<typeof InjectorConfigSchema>;

/** The configuration from `file` (YAML), or the defaults without one; throws a ConfigError naming each bad field. */
export function loadInjectorConfig(file?: string): InjectorConfig {
  const raw = file === undefined ? {} : readYaml(file);
  const result = InjectorConfigSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  const prefix = file ?? 'configuration';
  throw new ConfigError(result.error.issues.map((issue) => `${prefix}: ${describeIssue(issue)}`));
}
