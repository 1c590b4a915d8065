// The injector's Prometheus series (outrigger_injector_ prefix) beside the
// process metrics. Every result is pre-declared at zero, so a rate() of
// denials works before the first one.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { VERSION } from '../../version.ts';
import type { AdmissionResult } from './mutate.ts';

const RESULTS: AdmissionResult[] = ['injected', 'skipped', 'denied', 'error'];

export class InjectorMetrics {
  readonly registry = new Registry();

  readonly admissions = new Counter({
    name: 'outrigger_injector_admissions_total',
    help: 'Admission reviews answered, by result: injected, skipped (left as is), denied (bad annotations), error',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly admissionDuration = new Histogram({
    name: 'outrigger_injector_admission_duration_seconds',
    help: 'From the review received to the answer sent, by result',
    labelNames: ['result'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  readonly certificateReloads = new Counter({
    name: 'outrigger_injector_certificate_reloads_total',
    help: 'Changes of the serving certificate files seen, by result: loaded, failed (the previous pair stays in use)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly certificateExpiry = new Gauge({
    name: 'outrigger_injector_certificate_expiry_timestamp_seconds',
    help: 'When the serving certificate in use expires (Unix time): alert well before it',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'outrigger_injector_build_info',
      help: 'Always 1; the version label is the injector version',
      labelNames: ['version'] as const,
      registers: [this.registry],
    }).set({ version: VERSION }, 1);
    for (const result of RESULTS) {
      this.admissions.inc({ result }, 0);
      this.admissionDuration.zero({ result });
    }
    for (const result of ['loaded', 'failed']) this.certificateReloads.inc({ result }, 0);
  }

  /** The Prometheus text of every series (the ops port's /metrics). */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }
}
