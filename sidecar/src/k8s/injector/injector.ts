// The injector process: the HTTPS webhook and the ops port, the serving
// certificate swapped in place when its files change, and a graceful stop
// that keeps answering reviews until the Service has stopped sending them.
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { Readiness } from '../../health/readiness.ts';
import { buildOpsServer } from '../../ops/server.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { VERSION } from '../../version.ts';
import type { InjectorConfig } from './injector-config.ts';
import { InjectorMetrics } from './injector-metrics.ts';
import { type CertificateFiles, ServingCertificate } from './serving-certificate.ts';
import { buildWebhook, type Webhook } from './webhook-server.ts';

export interface InjectorOptions {
  config: InjectorConfig;
  certificate: CertificateFiles;
  /** Where both servers listen: 0.0.0.0 in a pod (the API server and the kubelet call in). */
  host: string;
  port: number;
  opsPort: number;
  logger: Logger;
  /** How long reviews are still answered after stop() begins (--drain, DRAIN_MS by default). */
  drainMs: number;
}

/**
 * On stop, reviews are still answered for this long. The Service keeps sending them here until its
 * endpoints drop this pod and the API server sees that; with failurePolicy Ignore, a review refused
 * meanwhile is a pod created without its sidecar.
 */
export const DRAIN_MS = 5_000;
/**
 * The pod's terminationGracePeriodSeconds a stop has to fit in: Kubernetes' default, which the chart's
 * Deployment sets explicitly. The kubelet sends SIGKILL when it is over.
 */
export const TERMINATION_GRACE_MS = 30_000;
/** In-flight reviews finish within this on stop; the API server gives a webhook at most 30 s anyway. */
export const STOP_GRACE_MS = 10_000;
/** Left of the termination grace after the longest drain and the stop grace: to close the ops port and exit. */
const EXIT_MARGIN_MS = 5_000;
/** The longest drain (15 s): the longest stop then ends 5 s before the kubelet's SIGKILL. */
export const MAX_DRAIN_MS = TERMINATION_GRACE_MS - STOP_GRACE_MS - EXIT_MARGIN_MS;

export class Injector {
  readonly metrics = new InjectorMetrics();
  private readonly readiness = new Readiness();
  private readonly certificate: ServingCertificate;
  private readonly webhook: Webhook;
  private readonly ops: FastifyInstance;
  private readonly options: InjectorOptions;

  /** Throws a CertificateError when the certificate or key cannot be used. */
  constructor(options: InjectorOptions) {
    const { config, logger } = options;
    this.options = options;
    this.certificate = new ServingCertificate(options.certificate, { logger, metrics: this.metrics });
    this.webhook = buildWebhook({ config, keyPair: this.certificate.pair, logger, metrics: this.metrics });
    this.certificate.onChange(({ cert, key }) => this.webhook.server.setSecureContext({ cert, key }));
    this.readiness.register({
      name: 'webhook',
      check: () => {
        const { listening } = this.webhook.server;
        return { ok: listening, detail: listening ? 'serving' : 'not listening' };
      },
    });
    this.ops = buildOpsServer({ readiness: this.readiness, metrics: this.metrics, logger });
  }

  async start(): Promise<{ webhook: string; ops: string }> {
    const { host, port, opsPort, logger, config } = this.options;
    await this.ops.listen({ host, port: opsPort });
    await this.webhook.listen({ host, port });
    this.certificate.watch();
    const addresses = { webhook: `https://${address(this.webhook)}/mutate`, ops: `http://${address(this.ops)}` };
    logger.info(
      { version: VERSION, ...addresses, image: config.image, notAfter: this.certificate.pair.notAfter.toISOString() },
      'injector started',
    );
    return addresses;
  }

  /**
   * Reports not ready, keeps answering reviews for the drain, then stops taking them, lets those in flight
   * finish (cutting the connections of any left after 10 s) and closes the ops port; true when it was clean.
   * At most the drain plus 10 s.
   */
  async stop(): Promise<boolean> {
    const { logger, drainMs } = this.options;
    this.readiness.markShuttingDown();
    if (this.webhook.server.listening && drainMs > 0) {
      logger.info({ drainMs }, 'injector stopping: still answering reviews while the Service drops this pod');
      await sleep(drainMs);
    }
    this.certificate.close();
    let timer: NodeJS.Timeout | undefined;
    const clean = await Promise.race([
      this.webhook.close().then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), STOP_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    // A review still in flight (a body that never ends, say) would keep the process up until SIGKILL: a closed
    // server no longer checks its request timeout. Its connection is cut, so the process exits now.
    if (!clean) this.webhook.server.closeAllConnections();
    await this.ops.close();
    if (clean) logger.info('injector stopped');
    else logger.error({ graceMs: STOP_GRACE_MS }, 'reviews still in flight after the grace period');
    return clean;
  }
}

function address(server: { server: { address(): AddressInfo | string | null } }): string {
  const info = server.server.address() as AddressInfo;
  const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
  return `${host === '0.0.0.0' ? '127.0.0.1' : host}:${info.port}`;
}
