// The injector's ops port, plain HTTP: /healthz (alive), /readyz (serving
// and not shutting down) and /metrics. Nothing else is reachable on it.
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { installProblemHandlers } from '../../api/errors.ts';
import type { Readiness } from '../../health/readiness.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { InjectorMetrics } from './injector-metrics.ts';

export function buildInjectorOps(deps: { readiness: Readiness; metrics: InjectorMetrics; logger: Logger }) {
  const { readiness, metrics, logger } = deps;
  const ops: FastifyInstance = Fastify({
    loggerInstance: logger.child({ server: 'ops' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  installProblemHandlers(ops);
  ops.get('/healthz', async () => ({ status: 'alive' }));
  ops.get('/readyz', async (_request, reply) => {
    const report = readiness.report();
    return reply.code(report.ready ? 200 : 503).send({ status: report.ready ? 'ready' : 'not ready', ...report });
  });
  ops.get('/metrics', async (_request, reply) =>
    reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  return ops;
}
