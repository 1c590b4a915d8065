// A subscription: how messages on a topic reach the app (API.md, "Subscriptions").
import { z } from 'zod';
import { appPath, duration, name, positiveInt, ratio, topic } from './fields.ts';

export const SubscriptionRetrySchema = z.strictObject({
  maxAttempts: positiveInt().default(8).describe('Deliveries before the message is dead-lettered (1 = no retry)'),
  initial: duration().prefault('1s').describe('Back-off before the second attempt'),
  max: duration().prefault('5m').describe('Longest back-off between attempts'),
  multiplier: z
    .number({ error: 'expected a number of at least 1' })
    .min(1, { error: 'expected a number of at least 1' })
    .default(2),
  jitter: ratio().default(0.2).describe('Random share of each back-off (0 = none, 1 = full jitter)'),
});

/** The fields of a subscription, without the checks across fields (the CRD's spec extends them). */
export const SubscriptionFields = z.strictObject({
  name: name().describe('Unique per app; used in API paths'),
  topic: topic(),
  mode: z.enum(['push', 'pull']).default('push'),
  route: appPath().optional().describe("Push only: the app's path the sidecar POSTs messages to"),
  group: name().optional().describe('Queue shared by competing consumers; defaults to the app id'),
  concurrency: positiveInt().default(16).describe('Deliveries in flight to the app'),
  prefetch: positiveInt().optional().describe('AMQP basic.qos; defaults to twice the concurrency'),
  timeout: duration().prefault('30s').describe('One delivery attempt'),
  retry: SubscriptionRetrySchema.prefault({}),
  deadLetter: z.boolean().default(true).describe("Park in the group's dead-letter queue after the last attempt"),
  ordered: z.boolean().default(false).describe('Single active consumer, one delivery at a time'),
  queueType: z
    .enum(['classic', 'quorum'])
    .default('classic')
    .describe('Type of the group queue and its dead-letter queue (fixed once the queue exists)'),
  inbox: z
    .strictObject({
      window: duration().prefault('10m').describe('How long a processed message id is remembered'),
      maxIds: positiveInt().default(10_000).describe('Ids remembered at most (oldest forgotten first)'),
    })
    .prefault({})
    .describe('Idempotent consumption: a redelivered message the app already processed is acked, not pushed'),
});

type SubscriptionShape = z.output<typeof SubscriptionFields>;

/** The checks across a subscription's fields, shared by the configuration file and the CRD. */
export function checkSubscription(sub: Omit<SubscriptionShape, 'name'>, ctx: z.RefinementCtx): void {
  if (sub.mode === 'push' && sub.route === undefined) {
    ctx.addIssue({ code: 'custom', path: ['route'], message: 'required when mode is push' });
  }
  if (sub.mode === 'pull' && sub.route !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['route'], message: 'only allowed when mode is push' });
  }
  if (sub.retry.initial > sub.retry.max) {
    ctx.addIssue({ code: 'custom', path: ['retry', 'initial'], message: 'must not be longer than retry.max' });
  }
}

export const SubscriptionSchema = SubscriptionFields.superRefine(checkSubscription);

export type SubscriptionInput = z.input<typeof SubscriptionSchema>;
