// GET /v1/metadata: who this sidecar is and the state of what it manages.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Broker } from '../broker/broker.ts';
import type { Config } from '../config/schema.ts';
import { VERSION } from '../version.ts';

const MetadataSchema = z.object({
  appId: z.string(),
  version: z.string(),
  runtime: z.object({ node: z.string() }),
  broker: z.object({ state: z.enum(['connecting', 'connected', 'blocked', 'closed']), address: z.string() }),
  subscriptions: z.array(
    z.object({ name: z.string(), topic: z.string(), mode: z.enum(['push', 'pull']), group: z.string() }),
  ),
  targets: z.array(z.object({ name: z.string(), baseUrl: z.string() })),
});

export interface MetadataDeps {
  config: Config;
  broker: Broker;
}

export const metadataRoutes: FastifyPluginAsyncZod<MetadataDeps> = async (app, { config, broker }) => {
  app.get(
    '/v1/metadata',
    {
      schema: {
        summary: 'Who this sidecar is, and the state of its broker connection, subscriptions and targets',
        tags: ['metadata'],
        response: { 200: MetadataSchema },
      },
    },
    async () => ({
      appId: config.appId,
      version: VERSION,
      runtime: { node: process.versions.node },
      broker: { state: broker.state, address: broker.address },
      subscriptions: config.subscriptions.map(({ name, topic, mode, group }) => ({ name, topic, mode, group })),
      targets: config.targets.map(({ name, baseUrl }) => ({ name, baseUrl })),
    }),
  );
};
