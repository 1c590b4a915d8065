// Field types shared by the configuration, the API and (later) the CRDs, each
// with the one message a user sees when it is wrong.
import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from './duration.ts';
import { parseSize, SIZE_PATTERN } from './size.ts';

/** Topic names, as in the contract: `[A-Za-z0-9][A-Za-z0-9._-]{0,199}`. */
export const TOPIC_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
/** Topic names the pattern allows but RabbitMQ (amq.) or the sidecar itself (outrigger.) reserve. */
const RESERVED_TOPIC_PREFIXES = ['amq.', 'outrigger.'] as const;
const isReservedTopic = (topic: string) => RESERVED_TOPIC_PREFIXES.some((prefix) => topic.startsWith(prefix));

/** Names of subscriptions and targets: they appear in URLs and queue names. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** An RFC 1123 DNS label, as Kubernetes names namespaces: 1-63 of a-z 0-9 -, starting and ending alphanumeric. */
export const DNS_LABEL_PATTERN = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The id of an app: a DNS label, as it names queues, resources and the injected pod's app. */
export const appId = () =>
  z.string({ error: 'required: the id of the app this sidecar serves' }).regex(DNS_LABEL_PATTERN, {
    error: 'expected a DNS label: 1-63 lowercase letters, digits and "-"',
  });

export const positiveInt = () =>
  z.int({ error: 'expected a positive integer' }).min(1, { error: 'expected a positive integer' });

/** A TCP port; where `anyFree` is set, 0 asks the system for a free one (tests, `outrigger run`). */
export const port = ({ anyFree = false } = {}) => {
  const error = {
    error: anyFree ? 'expected a port number (0-65535; 0 picks a free port)' : 'expected a port number (1-65535)',
  };
  return z
    .int(error)
    .min(anyFree ? 0 : 1, error)
    .max(65535, error);
};

export const ratio = () =>
  z
    .number({ error: 'expected a number between 0 and 1' })
    .min(0, { error: 'expected a number between 0 and 1' })
    .max(1, { error: 'expected a number between 0 and 1' });

/** A duration string ("250ms", "30s", "7d", "PT10M"), parsed to milliseconds. */
export const duration = () =>
  z
    .string({ error: 'expected a duration such as "500ms", "30s", "5m" or "PT10M"' })
    .regex(new RegExp(DURATION_PATTERN), { error: 'expected a duration such as "500ms", "30s", "5m" or "PT10M"' })
    .transform((text) => parseDuration(text) as number);

/**
 * The longest wait a timer can be given: 24 days, within setTimeout's longest delay (2^31 - 1 ms, some 24.8
 * days); a longer timer fires at once.
 */
export const LONGEST_TIMER_MS = 24 * 86_400_000;

/** A duration a timer waits out (a timeout, a back-off, an interval): at most LONGEST_TIMER_MS. */
export const timerDuration = () => duration().refine((ms) => ms <= LONGEST_TIMER_MS, { error: 'expected at most 24d' });

/** A byte size (1048576, "512KiB", "1MiB"), parsed to bytes. */
const SIZE_ERROR = { error: 'expected a size such as 1048576, "512KiB" or "1MiB"' };
export const size = () =>
  z
    .union([z.int(SIZE_ERROR).min(1, SIZE_ERROR), z.string(SIZE_ERROR).regex(new RegExp(SIZE_PATTERN), SIZE_ERROR)])
    .transform((value) => (typeof value === 'number' ? value : (parseSize(value) as number)));

export const topic = () =>
  z
    .string({ error: 'expected a topic name' })
    .regex(TOPIC_PATTERN, { error: 'expected 1-200 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit' })
    .refine((value) => !isReservedTopic(value), { error: 'names starting with "amq." or "outrigger." are reserved' });

export const name = () =>
  z
    .string({ error: 'expected a name' })
    .regex(NAME_PATTERN, { error: 'expected 1-100 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit' });

/** A path on the app, such as "/events/readings". */
export const appPath = () =>
  z
    .string({ error: 'expected a path starting with "/"' })
    .regex(/^\/[^\s?#]*$/, { error: 'expected a path starting with "/", without spaces, query or fragment' });
