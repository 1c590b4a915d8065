// The Subscription and OutboundTarget resources (group outrigger.dev): their
// specs are the configuration file's entries with `appId` added and `name`
// taken from metadata.name, validated by the very schemas the file is.
import { appId } from '../config/fields.ts';
import { checkSubscription, SubscriptionFields } from '../config/subscription.ts';
import { checkTarget, TargetFields } from '../config/target.ts';

export const GROUP = 'outrigger.dev';
export const VERSION = 'v1alpha1';

const scoped = { appId: appId().describe('The app whose sidecars apply this resource (outrigger.dev/app-id)') };

export const SubscriptionSpecSchema = SubscriptionFields.omit({ name: true })
  .extend(scoped)
  .superRefine(checkSubscription);

export const OutboundTargetSpecSchema = TargetFields.omit({ name: true }).extend(scoped).superRefine(checkTarget);

/** What the API server and the sidecar call each kind. */
export const KINDS = {
  Subscription: {
    plural: 'subscriptions',
    singular: 'subscription',
    shortNames: ['osub'],
    spec: SubscriptionSpecSchema,
  },
  OutboundTarget: {
    plural: 'outboundtargets',
    singular: 'outboundtarget',
    shortNames: ['otarget'],
    spec: OutboundTargetSpecSchema,
  },
} as const;

export type Kind = keyof typeof KINDS;
