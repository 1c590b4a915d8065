// The webhook: HTTPS, one route, POST /mutate. buildWebhook() returns the
// instance without listening; the Injector listens and stops it.
import type { Server } from 'node:https';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, LogController } from 'fastify';
import { installProblemHandlers } from '../../api/errors.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { parseAdmissionReview, reviewOf } from './admission-review.ts';
import type { InjectorConfig } from './injector-config.ts';
import type { InjectorMetrics } from './injector-metrics.ts';
import { type AdmissionResult, decide } from './mutate.ts';
import type { KeyPair } from './serving-certificate.ts';

export interface WebhookDeps {
  config: InjectorConfig;
  keyPair: KeyPair;
  logger: Logger;
  metrics: InjectorMetrics;
}

export type Webhook = FastifyInstance<Server>;

/** A review holds a whole pod, twice on updates; the API server caps an object at about 3 MiB. */
const BODY_LIMIT = 8 * 1024 * 1024;

export function buildWebhook({ config, keyPair, logger, metrics }: WebhookDeps): Webhook {
  const webhook = Fastify({
    https: { cert: keyPair.cert, key: keyPair.key },
    loggerInstance: logger.child({ server: 'webhook' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // The API server waits at most 30 s (timeoutSeconds) for a webhook.
    requestTimeout: 30_000,
    // A review that arrives on an open connection while the webhook closes is answered, not refused with 503:
    // with failurePolicy Ignore, a refused review is a pod created without its sidecar.
    return503OnClosing: false,
  }) as unknown as Webhook;
  installProblemHandlers(webhook);
  // The API server sends JSON; anything else is answered 415 rather than parsed.
  webhook.removeContentTypeParser('text/plain');

  // Counted on the response, so reviews refused before the handler (not JSON, too large) count as errors too.
  const results = new WeakMap<FastifyRequest, AdmissionResult>();
  webhook.addHook('onResponse', async (request, reply) => {
    if (request.routeOptions.url !== '/mutate') return;
    const result = results.get(request) ?? 'error';
    metrics.admissions.inc({ result });
    metrics.admissionDuration.observe({ result }, reply.elapsedTime / 1000);
  });

  webhook.post('/mutate', async (request) => {
    const admission = parseAdmissionReview(request.body);
    const decision = decide(admission, config);
    results.set(request, decision.result);
    const pod = admission.object as { metadata?: { name?: string; generateName?: string } } | null;
    const line = {
      uid: admission.uid,
      namespace: admission.namespace,
      pod: pod?.metadata?.name || pod?.metadata?.generateName,
      result: decision.result,
      reason: decision.reason,
    };
    if (decision.result === 'skipped') request.log.debug(line, 'admission review');
    else if (decision.result === 'injected') request.log.info(line, 'admission review');
    else request.log.warn(line, 'admission review');
    return reviewOf(decision.response);
  });
  return webhook;
}
