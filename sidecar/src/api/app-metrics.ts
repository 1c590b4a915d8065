// POST /v1/metrics: the app's own counters, gauges and histograms, shown on
// the ops port's /metrics with an app_ prefix (docs/api.md, "App metrics").
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { APP_METRIC_PREFIX, type AppMetrics } from '../telemetry/app-metrics.ts';

// Any JSON number: 1e999 parses to Infinity, which z.number() would call a bad shape (REQUEST_INVALID);
// AppMetrics refuses it as METRIC_INVALID, the code the app can act on.
const AnyNumber = z.custom<number>((value) => typeof value === 'number', 'expected a number').meta({ type: 'number' });

const Entry = z.strictObject({
  name: z.string().describe(`Without the prefix: "orders_total" shows as ${APP_METRIC_PREFIX}orders_total`),
  type: z.enum(['counter', 'gauge', 'histogram']),
  value: AnyNumber.describe('counter: the increment (>= 0); gauge: the new value; histogram: one observation'),
  labels: z.record(z.string(), z.string()).optional().describe('The same label names every time for one metric'),
  help: z.string().optional().describe('Taken from the entry that creates the metric'),
  buckets: z
    .array(AnyNumber)
    .optional()
    .describe('Histogram upper bounds, increasing (+Inf is implied); only when the histogram is created'),
});

export interface AppMetricsDeps {
  appMetrics: AppMetrics;
}

export const appMetricsRoutes: FastifyPluginAsyncZod<AppMetricsDeps> = async (app, { appMetrics }) => {
  // JSON only (fastify would also parse text/plain).
  app.removeContentTypeParser('text/plain');
  app.post(
    '/v1/metrics',
    {
      schema: {
        summary: 'Record app metrics; all entries are applied, or none (400) if any is bad',
        tags: ['metrics'],
        body: z.array(Entry),
        response: { 204: z.null().describe('Applied') },
      },
    },
    async (request, reply) => {
      appMetrics.apply(request.body);
      return reply.code(204).send(null);
    },
  );
};
