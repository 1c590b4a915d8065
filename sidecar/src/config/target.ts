// An outbound target: an external API the app calls through the sidecar (API.md, "Outbound calls").
import { z } from 'zod';
import { duration, name, positiveInt, ratio, timerDuration } from './fields.ts';

const RETRY_ON_ERROR = { error: 'expected an HTTP status (400-599), "connect-error", "reset" or "timeout"' };
const RetryOn = z.union([
  z.int(RETRY_ON_ERROR).min(400, RETRY_ON_ERROR).max(599, RETRY_ON_ERROR),
  z.enum(['connect-error', 'reset', 'timeout'], RETRY_ON_ERROR),
]);

export const TargetRetrySchema = z.strictObject({
  maxAttempts: positiveInt().default(3),
  initial: timerDuration().prefault('100ms'),
  max: timerDuration().prefault('2s'),
  jitter: z.union([z.literal('full'), ratio()]).default('full'),
  on: z.array(RetryOn).default([502, 503, 504, 429, 'connect-error', 'reset']),
});

const HeaderValue = z.union(
  [
    z.strictObject({ value: z.string() }),
    z.strictObject({ secretEnv: z.string().min(1) }),
    z.strictObject({ secretFile: z.string().min(1) }),
  ],
  { error: 'expected {value: ...}, {secretEnv: NAME} or {secretFile: PATH}' },
);

const FAILURE_RATIO_ERROR = { error: 'expected a number greater than 0 and less than 1' };

/** The circuit breaker: failures in a row (the default), or a failure ratio over a sliding window. */
const CircuitBreakerSchema = z
  .strictObject({
    consecutiveFailures: positiveInt().optional().describe('Failures in a row that open the circuit. Default: 5.'),
    sampling: z
      .strictObject({
        failureRatio: z
          .number(FAILURE_RATIO_ERROR)
          .gt(0, FAILURE_RATIO_ERROR)
          .lt(1, FAILURE_RATIO_ERROR)
          .default(0.5)
          .describe('Opens when more than this share of the attempts in the window failed'),
        window: duration()
          .refine((ms) => ms >= 1_000 && ms <= 600_000, { error: 'expected a window from 1s to 10m' })
          .prefault('30s')
          .describe('The sliding window, 1s to 10m'),
        minimumRps: z
          .number({ error: 'expected a number above 0' })
          .gt(0, { error: 'expected a number above 0' })
          .default(5)
          .describe('Below this many attempts per second (over the window) it never opens'),
      })
      .optional()
      .describe('Instead of consecutiveFailures: open on a failure ratio over a sliding window'),
    halfOpenAfter: duration().prefault('10s').describe('Time open before one trial call'),
  })
  .refine((breaker) => breaker.consecutiveFailures === undefined || breaker.sampling === undefined, {
    error: 'set consecutiveFailures or sampling, not both',
  })
  .transform(
    ({ consecutiveFailures, sampling, halfOpenAfter }): CircuitBreaker =>
      sampling === undefined
        ? { consecutiveFailures: consecutiveFailures ?? 5, halfOpenAfter }
        : { sampling, halfOpenAfter },
  );

/** The breaker as parsed: exactly one of the two ways to open it. */
export type CircuitBreaker =
  | { consecutiveFailures: number; sampling?: undefined; halfOpenAfter: number }
  | {
      consecutiveFailures?: undefined;
      sampling: { failureRatio: number; window: number; minimumRps: number };
      halfOpenAfter: number;
    };

/** A DNS name; no lookahead for its length, as the CRD's copy of the pattern is checked by Go's RE2. */
const DNS_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const pemFile = (what: string) => z.string().min(1, { error: 'expected a file path' }).optional().describe(what);

/** TLS towards an https:// target: whom to trust, the client certificate to show, the name to check. */
const TargetTlsSchema = z
  .strictObject({
    caFile: pemFile(
      "PEM file of the CA certificates to trust instead of Node.js's public ones (a private or internal CA)",
    ),
    certFile: pemFile('PEM file of the client certificate (and its chain), for mutual TLS; with keyFile'),
    keyFile: pemFile("PEM file of the client certificate's private key (not encrypted); with certFile"),
    serverName: z
      .string()
      .max(253, { error: 'expected a DNS name' })
      .regex(DNS_NAME, { error: 'expected a DNS name' })
      .refine((name) => !/^[0-9.]+$/.test(name), { error: 'expected a DNS name, not an IP address' })
      .optional()
      .describe("The name sent as SNI and checked against the target's certificate. Default: baseUrl's host"),
  })
  .refine((tls) => (tls.certFile === undefined) === (tls.keyFile === undefined), {
    error: 'set certFile and keyFile together',
  });

/** An outbound target's fields; the CRD's spec is the same without `name` (k8s/resources.ts). */
export const TargetFields = z.strictObject({
  name: name(),
  baseUrl: z
    .url({ protocol: /^https?$/, error: 'expected an absolute http:// or https:// URL' })
    .describe('Every call goes to this origin and path prefix'),
  timeout: timerDuration().prefault('10s').describe('One attempt'),
  deadline: timerDuration()
    .refine((ms) => ms > 0, { error: 'expected a duration above 0' })
    .optional()
    .describe(
      "A whole call, from its arrival until its answer's headers go back: the bulkhead's queue, every attempt and back-off; an outrigger-timeout header can shorten it. Default: none",
    ),
  retry: TargetRetrySchema.prefault({}),
  budget: z.strictObject({ ratio: ratio().default(0.2), minPerSecond: z.number().min(0).default(10) }).prefault({}),
  circuitBreaker: CircuitBreakerSchema.prefault({}),
  bulkhead: z
    .strictObject({ maxConcurrent: positiveInt().default(64), maxQueue: z.int().min(0).default(128) })
    .prefault({}),
  headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/), HeaderValue).default({}),
  followRedirects: z.boolean().default(false).describe('Follow redirects that stay on the target origin'),
  tls: TargetTlsSchema.optional().describe('TLS settings for an https:// baseUrl'),
});

/** What one field cannot say: TLS settings only mean something for an https:// target. */
export function checkTarget(target: { baseUrl: string; tls?: unknown }, ctx: z.RefinementCtx): void {
  if (target.tls !== undefined && URL.parse(target.baseUrl)?.protocol === 'http:') {
    ctx.addIssue({ code: 'custom', path: ['tls'], message: 'only for an https:// baseUrl' });
  }
}

export const TargetSchema = TargetFields.superRefine(checkTarget);

export type TargetInput = z.input<typeof TargetSchema>;
