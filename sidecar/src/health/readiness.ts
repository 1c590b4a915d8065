// Readiness is the sum of registered health checks: the broker connection now,
// the subscriptions and the app's own health later. Liveness is the process.

export interface CheckResult {
  ok: boolean;
  detail: string;
}

export interface HealthCheck {
  readonly name: string;
  check(): CheckResult;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, CheckResult>;
}

export class Readiness {
  private readonly checks = new Map<string, HealthCheck>();
  private shuttingDown = false;

  register(check: HealthCheck): void {
    if (this.checks.has(check.name)) throw new Error(`health check "${check.name}" registered twice`);
    this.checks.set(check.name, check);
  }

  /** From here on the sidecar reports not ready, whatever the checks say. */
  markShuttingDown(): void {
    this.shuttingDown = true;
  }

  report(): ReadinessReport {
    const checks: Record<string, CheckResult> = {};
    let ready = !this.shuttingDown;
    if (this.shuttingDown) checks.shutdown = { ok: false, detail: 'shutting down' };
    for (const [name, check] of this.checks) {
      const result = check.check();
      checks[name] = result;
      ready &&= result.ok;
    }
    return { ready, checks };
  }
}
