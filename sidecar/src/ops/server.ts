// The ops port: /healthz (the process is alive), /readyz (every readiness
// check passes) and /metrics (Prometheus text). Reachable from outside the pod
// for kubelet probes and Prometheus; it exposes nothing else.
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { installProblemHandlers } from '../api/errors.ts';
import type { Readiness } from '../health/readiness.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';

export interface OpsDeps {
  readiness: Readiness;
  metrics: Metrics;
  logger: Logger;
}

export function buildOps({ readiness, metrics, logger }: OpsDeps): FastifyInstance {
  const ops = Fastify({
    loggerInstance: logger.child({ server: 'ops' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  installProblemHandlers(ops);

  metrics.onScrape(() => metrics.ready.set(readiness.report().ready ? 1 : 0));

  ops.get('/healthz', async () => ({ status: 'alive' }));

  ops.get('/readyz', async (_request, reply) => {
    const report = readiness.report();
    metrics.ready.set(report.ready ? 1 : 0);
    return reply.code(report.ready ? 200 : 503).send({ status: report.ready ? 'ready' : 'not ready', ...report });
  });

  ops.get('/metrics', async (_request, reply) =>
    reply.header('content-type', metrics.registry.contentType).send(await metrics.scrape()),
  );
  return ops;
}
