// What the rest of the sidecar knows of the broker. Nothing outside broker/
// imports amqplib.
import type { HealthCheck } from '../health/readiness.ts';

export type BrokerState = 'connecting' | 'connected' | 'blocked' | 'closed';

/** A message to publish to a topic; the broker makes it durable before the promise resolves. */
export interface OutgoingMessage {
  topic: string;
  body: Buffer;
  /** The message id: the idempotency key, the CloudEvents id, or one the sidecar made. */
  id: string;
  contentType?: string | undefined;
  /** Application headers carried with the message (CloudEvents attributes, trace context). */
  headers: Record<string, string>;
  /** Hold the message in the broker this long before delivering it (ms; 0 or absent: now). */
  delayMs?: number | undefined;
}

export interface PublishOutcome {
  /** False when no queue was bound to receive the message (it was confirmed, and dropped). */
  routed: boolean;
}

export interface Broker {
  readonly state: BrokerState;
  /** The broker's address with the password masked. */
  readonly address: string;
  /** Starts connecting in the background; never waits for the broker. */
  start(): Promise<void>;
  /** Closes the connection cleanly. */
  close(): Promise<void>;
  /** Resolves once the broker confirmed the message; rejects with BrokerUnavailableError otherwise. */
  publish(message: OutgoingMessage): Promise<PublishOutcome>;
  /** The longest delay a delayed publish may ask for. */
  readonly maxDelayMs: number;
  /** Publishes not yet confirmed. */
  readonly publishesInFlight: number;
  readonly health: HealthCheck;
}

/** The broker could not take the message: not connected, or the channel failed before confirming. */
export class BrokerUnavailableError extends Error {
  readonly isBrokerUnavailable = true;
  constructor(reason: string) {
    super(reason);
    this.name = 'BrokerUnavailableError';
  }
}

export const isBrokerUnavailable = (error: unknown): error is BrokerUnavailableError =>
  typeof error === 'object' && error !== null && (error as BrokerUnavailableError).isBrokerUnavailable === true;
