// JSON logs with pino. Secrets never reach a log line: tokens and credentials
// are redacted by path, and broker URLs are logged through redactUrl(). A line
// written while a span is active (a request, a delivery) carries its trace_id
// and span_id, so logs and traces join.
import { trace } from '@opentelemetry/api';
import { type Logger, pino } from 'pino';

export type { Logger };

const REDACT_PATHS = [
  'req.headers["outrigger-api-token"]',
  'req.headers["outrigger-app-token"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'config.auth',
  'config.broker.url',
  'config.outbox.url',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      mixin: traceIds,
    },
    destination,
  );
}

function traceIds(): Record<string, string> {
  const span = trace.getActiveSpan()?.spanContext();
  if (span === undefined) return {};
  return { trace_id: span.traceId, span_id: span.spanId };
}

/** `amqp://guest:***@host:5672/vhost`: safe to log and to show in metadata. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '[unparsable url]';
  }
}
