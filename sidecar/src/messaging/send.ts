// One publish as the publish API and the outbox relay both make it: under a
// `send {topic}` PRODUCER span, counted in outrigger_publishes_total by
// outcome and, when it went to the broker, timed in
// outrigger_publish_duration_seconds.
import { type Broker, isBrokerUnavailable, type OutgoingMessage, type PublishOutcome } from '../broker/broker.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { endSpan, type SendParent, startSend } from '../telemetry/spans.ts';

/** A publish under way; `duplicate` when the dedupe window answered it and nothing was sent. */
export interface Sending {
  result: Promise<PublishOutcome>;
  duplicate: boolean;
}

/** The plain publish, for callers without a dedupe window. */
export const publishTo = (broker: Broker, message: OutgoingMessage) => (): Sending => ({
  result: broker.publish(message),
  duplicate: false,
});

/** Runs `publish` for `message`; rejects as it does (BrokerUnavailableError when the broker did not take it). */
export async function send(
  message: OutgoingMessage,
  metrics: Metrics,
  publish: () => Sending,
  parent: SendParent = 'active',
): Promise<{ routed: boolean; duplicate: boolean }> {
  const started = performance.now();
  const span = startSend(message, parent);
  const { result, duplicate } = publish();
  try {
    const { routed } = await result;
    if (span !== undefined) {
      span.setAttribute('outrigger.routed', routed);
      if (duplicate) span.setAttribute('outrigger.duplicate', true);
      if (message.delayMs !== undefined) span.setAttribute('outrigger.delay_ms', message.delayMs);
      span.end();
    }
    metrics.publishes.inc({
      topic: message.topic,
      outcome: duplicate ? 'duplicate' : routed ? 'routed' : 'unroutable',
    });
    if (!duplicate) metrics.publishDuration.observe({ topic: message.topic }, (performance.now() - started) / 1000);
    return { routed, duplicate };
  } catch (error) {
    const unavailable = isBrokerUnavailable(error);
    endSpan(span, { 'error.type': unavailable ? 'BROKER_UNAVAILABLE' : 'INTERNAL' }, (error as Error).message);
    if (unavailable) metrics.publishes.inc({ topic: message.topic, outcome: 'broker_unavailable' });
    throw error;
  }
}
