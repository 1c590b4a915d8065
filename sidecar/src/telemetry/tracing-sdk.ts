// The OpenTelemetry trace SDK itself: exporter, sampler and batch processor
// from the OTEL_* variables, registered globally. Loaded only when tracing is
// on (tracing.ts decides): the SDK and its exporters are about 20 MB of a
// sidecar's memory and a tenth of a second of its start.
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { Logger } from './logger.ts';
import type { Tracing, TracingOptions } from './tracing.ts';

export function registerSdk(options: TracingOptions, env: NodeJS.ProcessEnv): Tracing {
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
    options.logger.warn({ protocol }, 'OTLP protocol not supported by the sidecar; using http/protobuf');
  }
  const exporter = protocol === 'http/json' ? new JsonExporter() : new ProtobufExporter();
  const provider = new TracerProvider({
    resource: sidecarResource(options, env),
    sampler: samplerFrom(env, options.logger),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter,
        scheduledDelayMillis: numberFrom(env.OTEL_BSP_SCHEDULE_DELAY, 5_000),
        maxQueueSize: numberFrom(env.OTEL_BSP_MAX_QUEUE_SIZE, 2_048),
        maxExportBatchSize: numberFrom(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512),
        exportTimeoutMillis: numberFrom(env.OTEL_BSP_EXPORT_TIMEOUT, 30_000),
      }),
    ],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  trace.setGlobalTracerProvider(provider);
  options.logger.info({ protocol, sampler: env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on' }, 'tracing on');
  return {
    async shutdown() {
      try {
        await provider.shutdown();
      } catch (error) {
        options.logger.warn({ err: (error as Error).message }, 'the last spans could not be exported');
      }
    },
  };
}

/**
 * The app id and version as service.name and service.version; in a pod the
 * injector made, k8s.pod.name and k8s.namespace.name from its downward-API
 * variables (OUTRIGGER_POD_NAME, OUTRIGGER_NAMESPACE), so a span leads to the
 * replica that made it. OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
 */
export function sidecarResource(options: Pick<TracingOptions, 'serviceName' | 'version'>, env: NodeJS.ProcessEnv) {
  const attributes: Record<string, string> = {
    'service.name': options.serviceName,
    'service.version': options.version,
  };
  if (env.OUTRIGGER_POD_NAME) {
    attributes['k8s.pod.name'] = env.OUTRIGGER_POD_NAME;
    if (env.OUTRIGGER_NAMESPACE) attributes['k8s.namespace.name'] = env.OUTRIGGER_NAMESPACE;
  }
  return resourceFromAttributes(attributes).merge(detectResources({ detectors: [envDetector] }));
}

/** OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, as the specification defines them. */
function samplerFrom(env: NodeJS.ProcessEnv, logger: Logger): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').toLowerCase();
  const ratio = () => {
    const value = Number(env.OTEL_TRACES_SAMPLER_ARG ?? '1');
    return Number.isFinite(value) && value >= 0 && value <= 1 ? value : 1;
  };
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio());
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio()) });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    default:
      logger.warn({ sampler: name }, 'unknown OTEL_TRACES_SAMPLER; using parentbased_always_on');
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

function numberFrom(value: string | undefined, fallback: number): number {
  const parsed = Number(value);
  return value !== undefined && value !== '' && Number.isFinite(parsed) && parsed >= 0 ? parsed : fallback;
}
