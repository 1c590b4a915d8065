// GET /v1/metadata: who this sidecar is and the state of what it manages.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Broker } from '../broker/broker.ts';
import { subscriptionQueue } from '../broker/subscription-queue.ts';
import type { Config } from '../config/schema.ts';
import type { Subscriptions } from '../delivery/subscriptions.ts';
import type { Outbound } from '../outbound/outbound.ts';
import type { OutboxRelay } from '../outbox/relay.ts';
import { VERSION } from '../version.ts';

const MetadataSchema = z.object({
  appId: z.string(),
  version: z.string(),
  runtime: z.object({ node: z.string() }),
  broker: z.object({ state: z.enum(['connecting', 'connected', 'blocked', 'closed']), address: z.string() }),
  subscriptions: z.array(
    z.object({
      name: z.string(),
      topic: z.string(),
      mode: z.enum(['push', 'pull']),
      group: z.string(),
      queue: z.string(),
      deadLetterQueue: z.string(),
      state: z.enum(['waiting-for-broker', 'consuming', 'paused', 'failed', 'closed']),
      detail: z.string(),
    }),
  ),
  app: z.object({
    healthy: z.boolean().describe('Whether the app takes deliveries now (true when it has no port: pull only)'),
  }),
  targets: z.array(
    z.object({
      name: z.string(),
      baseUrl: z.string(),
      circuit: z.enum(['closed', 'half-open', 'open']).describe("The target's circuit breaker"),
      proxy: z
        .string()
        .optional()
        .describe("The egress proxy's host:port, when calls to the target go through one (HTTPS_PROXY, HTTP_PROXY)"),
    }),
  ),
  outbox: z
    .object({
      table: z.string(),
      state: z.enum(['connecting', 'relaying', 'failed', 'closed']),
      detail: z.string(),
    })
    .optional()
    .describe('The outbox relay, when `outbox` is configured'),
});

export interface MetadataDeps {
  config: Config;
  broker: Broker;
  subscriptions: Subscriptions;
  outbound: Outbound;
  outbox?: OutboxRelay | undefined;
}

export const metadataRoutes: FastifyPluginAsyncZod<MetadataDeps> = async (
  app,
  { config, broker, subscriptions, outbound, outbox },
) => {
  app.get(
    '/v1/metadata',
    {
      schema: {
        summary: 'Who this sidecar is, and the state of its broker connection, subscriptions, targets and outbox relay',
        tags: ['metadata'],
        response: { 200: MetadataSchema },
      },
    },
    async () => ({
      appId: config.appId,
      version: VERSION,
      runtime: { node: process.versions.node },
      broker: { state: broker.state, address: broker.address },
      subscriptions: subscriptions.list().map((sub) => {
        const { queue, deadLetterQueue } = subscriptionQueue(sub);
        const consumer = subscriptions.get(sub.name)?.consumer;
        return {
          name: sub.name,
          topic: sub.topic,
          mode: sub.mode,
          group: sub.group,
          queue,
          deadLetterQueue,
          state: consumer?.state ?? 'waiting-for-broker',
          detail: consumer?.detail ?? 'not started',
        };
      }),
      app: { healthy: subscriptions.appHealth?.isHealthy ?? true },
      targets: outbound.states(),
      ...(outbox === undefined ? {} : { outbox: outbox.status }),
    }),
  );
};
