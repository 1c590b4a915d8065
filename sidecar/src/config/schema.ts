// The sidecar's configuration: the single source of truth for every setting,
// its default and its validation. The file, the environment and (later) the
// CRDs all go through this schema.
import { z } from 'zod';
import { appId, appPath, DNS_LABEL_PATTERN, duration, port, positiveInt, size, timerDuration } from './fields.ts';
import { OutboxSchema } from './outbox.ts';
import { SubscriptionSchema } from './subscription.ts';
import { resolveSubscription, subscriptionSetProblems } from './subscription-set.ts';
import { TargetSchema } from './target.ts';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1']);

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const uniqueNames = (kind: string) => (items: { name: string }[], ctx: z.RefinementCtx) => {
  const seen = new Set<string>();
  items.forEach((item, index) => {
    if (seen.has(item.name)) {
      ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `duplicate ${kind} name "${item.name}"` });
    }
    seen.add(item.name);
  });
};

export const ConfigSchema = z
  .strictObject({
    appId: appId(),
    app: z
      .strictObject({
        host: z.string().default('127.0.0.1').describe('Where the sidecar reaches the app'),
        port: port().optional().describe("The app's HTTP port; needed for push delivery and health checks"),
        healthPath: appPath().optional(),
        healthInterval: timerDuration().prefault('5s'),
      })
      .prefault({}),
    broker: z
      .strictObject({
        url: z
          .string()
          .regex(/^amqps?:\/\/[^\s]+$/, { error: 'expected an amqp:// or amqps:// URL' })
          .default('amqp://guest:guest@127.0.0.1:5672'),
        heartbeat: duration().prefault('15s'),
        reconnect: z
          .strictObject({ initial: timerDuration().prefault('200ms'), max: timerDuration().prefault('10s') })
          .prefault({}),
      })
      .prefault({}),
    http: z
      .strictObject({
        host: z.string().default('localhost').describe('"localhost" listens on 127.0.0.1 and ::1'),
        port: port({ anyFree: true }).default(3600),
        allowNonLoopback: z.boolean().default(false).describe('Required to bind the app API to anything but loopback'),
        bodyLimit: size().default(1_048_576),
      })
      .prefault({}),
    ops: z
      .strictObject({
        host: z.string().default('0.0.0.0'),
        port: port({ anyFree: true }).default(9464),
      })
      .prefault({}),
    auth: z
      .strictObject({
        apiToken: z.string().min(16, { error: 'expected at least 16 characters' }).optional(),
        appToken: z.string().min(16, { error: 'expected at least 16 characters' }).optional(),
      })
      .prefault({}),
    publish: z
      .strictObject({
        maxInFlight: positiveInt().default(1024).describe('Publishes waiting for confirms before 429 BACKPRESSURE'),
        dedupeWindow: duration().prefault('10m').describe('How long an idempotency key is remembered'),
        dedupeMaxKeys: positiveInt().default(100_000).describe('Keys remembered at most (oldest forgotten first)'),
      })
      .prefault({}),
    log: z.strictObject({ level: z.enum(LOG_LEVELS).default('info') }).prefault({}),
    tracing: z
      .strictObject({
        messageParent: z
          .enum(['child', 'link'])
          .default('child')
          .describe("A consumer's span: child of the producer's (one trace per workflow) or a new trace linked to it"),
      })
      .prefault({}),
    kubernetes: z
      .strictObject({
        watch: z
          .boolean()
          .default(false)
          .describe('Apply the Subscription and OutboundTarget resources of this app id as they change (hot reload)'),
        namespace: z
          .string()
          .regex(DNS_LABEL_PATTERN, { error: 'expected a namespace name' })
          .optional()
          .describe("Where to watch; by default the pod's own namespace"),
      })
      .prefault({}),
    shutdown: z
      .strictObject({ grace: timerDuration().prefault('20s').describe('Time to finish in-flight work on SIGTERM') })
      .prefault({}),
    subscriptions: z.array(SubscriptionSchema).default([]).superRefine(uniqueNames('subscription')),
    targets: z.array(TargetSchema).default([]).superRefine(uniqueNames('target')),
    outbox: OutboxSchema.optional().describe('Relay messages the app writes to a PostgreSQL table (docs/outbox.md)'),
  })
  .superRefine((config, ctx) => {
    if (!config.http.allowNonLoopback && !LOOPBACK_HOSTS.has(config.http.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['http', 'host'],
        message: 'the app API listens on loopback only; set http.allowNonLoopback: true to expose it',
      });
    }
    if (config.app.healthPath !== undefined && config.app.port === undefined) {
      // Else nothing would poll it, and readiness would not say so.
      ctx.addIssue({
        code: 'custom',
        path: ['app', 'healthPath'],
        message: 'the health check needs app.port (or OUTRIGGER_APP_PORT)',
      });
    }
    if (config.http.port === config.ops.port && config.http.port !== 0) {
      ctx.addIssue({ code: 'custom', path: ['ops', 'port'], message: 'must differ from http.port' });
    }
    const problems = subscriptionSetProblems(config.subscriptions, { appId: config.appId, appPort: config.app.port });
    for (const { index, field, message } of problems) {
      ctx.addIssue({ code: 'custom', path: ['subscriptions', index, field], message });
    }
  })
  .transform((config) => ({
    ...config,
    subscriptions: config.subscriptions.map((sub) => resolveSubscription(sub, config.appId)),
  }));

export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type Subscription = Config['subscriptions'][number];
export type Target = Config['targets'][number];
