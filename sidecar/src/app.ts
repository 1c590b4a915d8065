// buildApp(): the app API as a fastify instance. It never listens; the
// sidecar does (api/server.ts, with the outbound proxy in front, which
// fastify does not see), and tests call inject().
import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { appMetricsRoutes } from './api/app-metrics.ts';
import type { RequestCheck } from './api/auth.ts';
import { installProblemHandlers } from './api/errors.ts';
import { metadataRoutes } from './api/metadata.ts';
import { openapiRoute } from './api/openapi.ts';
import { outboundPaths } from './api/outbound-openapi.ts';
import { publishRoutes } from './api/publish.ts';
import { subscriptionRoutes } from './api/subscriptions.ts';
import type { Broker } from './broker/broker.ts';
import type { Config } from './config/schema.ts';
import type { Subscriptions } from './delivery/subscriptions.ts';
import type { Outbound } from './outbound/outbound.ts';
import type { OutboxRelay } from './outbox/relay.ts';
import type { Logger } from './telemetry/logger.ts';
import type { Metrics } from './telemetry/metrics.ts';
import { installServerSpans } from './telemetry/server-spans.ts';
import { VERSION } from './version.ts';

export interface AppDeps {
  config: Config;
  logger: Logger;
  broker: Broker;
  metrics: Metrics;
  subscriptions: Subscriptions;
  /** The outbound targets (closed by the owner, after the app). */
  outbound: Outbound;
  /** The outbox relay, when one is configured. */
  outbox?: OutboxRelay | undefined;
  /** Refuses requests while shutting down, and without the API token (api/auth.ts). */
  checkRequest: RequestCheck;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, logger, metrics } = deps;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Per-request log lines would cost more than a publish; errors are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request (pino builds and serialises one each time, some 4 µs a request):
    // with request logging off it would only add a reqId to the rare error line, which names the
    // method and route instead (api/errors.ts).
    childLoggerFactory: (logger) => logger,
    bodyLimit: config.http.bodyLimit,
    return503OnClosing: false,
    // Topics may be 200 characters long; the router's default limit is 100.
    routerOptions: { maxParamLength: 256 },
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installProblemHandlers(app);
  installServerSpans(app);

  // Callback hooks, not async ones: no promise per request on the hottest path.
  app.addHook('onRequest', (request, _reply, done) => done(deps.checkRequest(request.headers)));
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.apiRequestDuration.observe(
      { route, method: request.method, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Outrigger sidecar app API',
        version: VERSION,
        description: 'What a service calls on localhost. Errors are RFC 9457 problem details with a stable code.',
      },
      servers: [{ url: `http://127.0.0.1:${config.http.port}` }],
      components: {
        securitySchemes: { apiToken: { type: 'apiKey', in: 'header', name: 'outrigger-api-token' } },
      },
      security: config.auth.apiToken === undefined ? [] : [{ apiToken: [] }],
    },
    transform: jsonSchemaTransform,
    // The outbound proxy is not a fastify route: its paths are written out here.
    transformObject: (document) =>
      'openapiObject' in document
        ? { ...document.openapiObject, paths: { ...document.openapiObject.paths, ...outboundPaths() } }
        : document.swaggerObject,
  });
  await app.register(metadataRoutes, deps);
  await app.register(publishRoutes, deps);
  await app.register(subscriptionRoutes, deps);
  await app.register(appMetricsRoutes, { appMetrics: metrics.app });
  await app.register(openapiRoute);
  return app;
}
