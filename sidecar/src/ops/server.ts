// The ops port, of the sidecar and of the injector alike: /healthz (the
// process is alive), /readyz (every readiness check passes) and /metrics
// (Prometheus text). Reachable from outside the pod for kubelet probes and
// Prometheus; it exposes nothing else.
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { installProblemHandlers } from '../api/errors.ts';
import type { Readiness } from '../health/readiness.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';

/** What /metrics serves: the sidecar's Metrics or the injector's InjectorMetrics. */
export interface OpsMetrics {
  readonly registry: { readonly contentType: string };
  /** The Prometheus text of every series. */
  scrape(): Promise<string>;
}

export interface OpsServerDeps {
  readiness: Readiness;
  metrics: OpsMetrics;
  logger: Logger;
  /** Told the verdict of every /readyz, for a gauge that mirrors it. */
  onReadiness?: (ready: boolean) => void;
}

/** The ops port's three routes; never listens by itself. */
export function buildOpsServer({ readiness, metrics, logger, onReadiness }: OpsServerDeps): FastifyInstance {
  const ops = Fastify({
    loggerInstance: logger.child({ server: 'ops' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  installProblemHandlers(ops);

  ops.get('/healthz', async () => ({ status: 'alive' }));

  ops.get('/readyz', async (_request, reply) => {
    const report = readiness.report();
    onReadiness?.(report.ready);
    return reply.code(report.ready ? 200 : 503).send({ status: report.ready ? 'ready' : 'not ready', ...report });
  });

  ops.get('/metrics', async (_request, reply) =>
    reply.header('content-type', metrics.registry.contentType).send(await metrics.scrape()),
  );
  return ops;
}

/** The sidecar's ops port: its outrigger_ready gauge follows readiness, fresh on every probe and every scrape. */
export function buildOps({
  readiness,
  metrics,
  logger,
}: Omit<OpsServerDeps, 'onReadiness' | 'metrics'> & { metrics: Metrics }): FastifyInstance {
  const mirror = (ready: boolean) => metrics.ready.set(ready ? 1 : 0);
  metrics.onScrape(() => mirror(readiness.report().ready));
  return buildOpsServer({ readiness, metrics, logger, onReadiness: mirror });
}
