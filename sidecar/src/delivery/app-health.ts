// Whether the app can take messages: its health path answers 2xx (or, with no
// health path, its port accepts connections). Polled every healthInterval,
// every second while it is down, so delivery resumes soon after the app is back.
import { connect } from 'node:net';
import type { CheckResult, HealthCheck } from '../health/readiness.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { AppClient } from './app-client.ts';

export interface AppHealthOptions {
  client: AppClient;
  host: string;
  port: number;
  healthPath?: string | undefined;
  intervalMs: number;
  logger: Logger;
  metrics: Metrics;
}

const DOWN_INTERVAL_MS = 1_000;

export class AppHealth {
  private healthy: boolean | undefined;
  private why = 'not checked yet';
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private polling = false;
  /** Tell the listeners the next result even if it is unchanged. */
  private announce = false;
  private readonly listeners: ((healthy: boolean) => void)[] = [];
  private readonly options: AppHealthOptions;

  constructor(options: AppHealthOptions) {
    this.options = options;
  }

  get isHealthy(): boolean {
    return this.healthy === true;
  }

  /** For readiness: only when the app has a health path of its own. */
  readonly health: HealthCheck = {
    name: 'app',
    check: () => ({ ok: this.healthy === true, detail: this.why }),
  };

  onChange(listener: (healthy: boolean) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    void this.poll();
  }

  /**
   * Something suggests the app is gone: check now, and tell every listener the
   * result even if it did not change (they may have paused in the meantime).
   */
  recheck(): void {
    this.announce = true;
    void this.poll();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async poll(): Promise<void> {
    if (this.stopped || this.polling) return;
    this.polling = true;
    clearTimeout(this.timer);
    const { client, healthPath, intervalMs, host, port } = this.options;
    let result: CheckResult;
    try {
      const timeoutMs = Math.min(intervalMs, 2_000);
      result =
        healthPath === undefined ? await portOpen(host, port, timeoutMs) : await client.healthy(healthPath, timeoutMs);
    } finally {
      this.polling = false;
    }
    if (this.stopped) return;
    const { ok } = result;
    const what = healthPath === undefined ? `port ${port}` : `GET ${healthPath}`;
    // What the app did (its status, silence, the connection error), so a pod that is not ready says why.
    this.why = `${what} ${result.detail}`;
    const changed = ok !== this.healthy;
    if (changed) {
      this.options.metrics.appHealthy.set(ok ? 1 : 0);
      const first = this.healthy === undefined;
      const fields = { check: what, detail: result.detail };
      if (ok) this.options.logger.info(fields, 'app is healthy: delivering');
      else if (first) this.options.logger.info(fields, 'app is not up yet: messages wait in the broker');
      else this.options.logger.warn(fields, 'app is unhealthy: delivery paused');
      this.healthy = ok;
    }
    if (changed || this.announce) {
      this.announce = false;
      for (const listener of this.listeners) listener(ok);
    }
    this.timer = setTimeout(() => void this.poll(), ok ? intervalMs : Math.min(intervalMs, DOWN_INTERVAL_MS));
    this.timer.unref();
  }
}

function portOpen(host: string, port: number, timeoutMs: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (ok: boolean, detail: string) => {
      socket.destroy();
      resolve({ ok, detail });
    };
    socket.once('connect', () => done(true, 'accepts connections'));
    socket.once('timeout', () => done(false, `accepted no connection within ${timeoutMs} ms`));
    socket.once('error', (error) => done(false, `failed: ${error.message}`));
  });
}
