// The OpenTelemetry trace SDK, set up from the standard OTEL_* variables
// before the sidecar takes its first request. Off unless an OTLP endpoint (or
// OTEL_TRACES_EXPORTER=otlp) is given, so a sidecar without a collector sends
// nothing and spends nothing on spans.
import { type Tracer, trace } from '@opentelemetry/api';
import { VERSION } from '../version.ts';
import type { Logger } from './logger.ts';

export interface Tracing {
  /** Exports what is still buffered, then stops (the end of a graceful shutdown). */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** service.name when OTEL_SERVICE_NAME does not set one: the app id. */
  serviceName: string;
  version: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}

let tracer: Tracer | undefined;

/** True once the SDK is registered: spans are worth making. */
export const tracingActive = (): boolean => tracer !== undefined;

/**
 * The sidecar's tracer once the SDK is registered (taken once: the global
 * provider's lookup by name and version costs about a microsecond a span),
 * else the API's no-op one.
 */
export const sidecarTracer = (): Tracer => tracer ?? trace.getTracer('outrigger', VERSION);

/**
 * Registers the SDK globally (once per process) when the environment asks for
 * traces; otherwise leaves the API's no-op tracer in place.
 */
export async function startTracing(options: TracingOptions): Promise<Tracing> {
  const env = options.env ?? process.env;
  const wanted = tracesWanted(env);
  if (wanted !== true) {
    if (typeof wanted === 'string') options.logger.warn({ reason: wanted }, 'tracing is off');
    return { shutdown: async () => {} };
  }
  const { registerSdk } = await import('./tracing-sdk.ts');
  const tracing = registerSdk(options, env);
  tracer = trace.getTracer('outrigger', VERSION);
  return tracing;
}

/** true, false (quietly off), or why the environment's request for traces cannot be met. */
function tracesWanted(env: NodeJS.ProcessEnv): boolean | string {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((name) => name.trim().toLowerCase());
  if (exporters.includes('none')) return false;
  const unsupported = exporters.filter((name) => name !== '' && name !== 'otlp');
  if (unsupported.length > 0) return `OTEL_TRACES_EXPORTER=${unsupported.join(',')}: only otlp is supported`;
  if (exporters.includes('otlp')) return true;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}
