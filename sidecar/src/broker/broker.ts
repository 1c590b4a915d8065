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
  /**
   * Declares the subscription's queues (now, and on every reconnect) and, while
   * active, hands each message to `onDelivery`. Exactly one consumer per
   * subscription and connection, re-created after every recovery.
   */
  consume(queue: SubscriptionQueue, onDelivery: (delivery: Delivery) => void): Consumer;
  /** The subscription's parked messages. Throws BrokerUnavailableError when disconnected. */
  deadLetters(queue: SubscriptionQueue): DeadLetterStore;
}

/** Where a subscription's messages wait (docs/api.md, "Queues"). */
export interface SubscriptionQueue {
  /** The subscription's name, for logs and consumer tags. */
  subscription: string;
  topic: string;
  /** Shared by every replica of every app subscribed with this group (competing consumers). */
  queue: string;
  /** The group's dead-letter queue, of the same type as `queue`. */
  deadLetterQueue: string;
  queueType: 'classic' | 'quorum';
  /** Single active consumer: one replica at a time takes the group's messages, in order. */
  singleActiveConsumer: boolean;
  /** Unacknowledged messages the broker hands this consumer at most (basic.qos). */
  prefetch: number;
}

/** A message as a consumer sees it. */
export interface InboundMessage {
  id: string;
  topic: string;
  body: Buffer;
  contentType?: string | undefined;
  /** The application headers the publisher sent (CloudEvents attributes, trace context). */
  headers: Record<string, string>;
  /** 1 on the first delivery; retries and expired leases count up, hand-backs do not. */
  attempt: number;
  publishedAt?: Date | undefined;
}

/** Why a delivery failed, carried with its retry and, in the end, its dead letter. */
export interface Failure {
  /** The app's HTTP status, when it answered. */
  status?: number | undefined;
  error: string;
}

export type DeadLetterReason = 'rejected' | 'max-attempts' | 'nacked';

/**
 * One delivery on one channel. Settling it after its channel is gone does
 * nothing: the broker hands the message out again.
 */
export interface Delivery extends InboundMessage {
  /** Done: the broker forgets the message. */
  ack(): Promise<void>;
  /**
   * Back to this subscription's queue only, after `delayMs`, with attempt + 1; confirmed before the ack.
   * False when the copy could not be sent and the message went back to the queue unchanged.
   */
  retry(delayMs: number, failure: Failure): Promise<boolean>;
  /** Into the dead-letter queue with why; confirmed before the ack. False as for `retry`. */
  deadLetter(reason: DeadLetterReason, failure: Failure): Promise<boolean>;
  /** Back to the queue at once without counting an attempt (shutdown, app going away). */
  release(): Promise<void>;
}

export type ConsumerState = 'waiting-for-broker' | 'consuming' | 'paused' | 'failed' | 'closed';

export interface Consumer {
  readonly state: ConsumerState;
  /** Why it is in that state, for readiness and metadata. */
  readonly detail: string;
  /** Stops taking new messages (cancels the broker consumer); delivered ones can still be settled. */
  pause(reason: string): void;
  resume(): void;
  /** Stops consuming and closes the channel: whatever is still unsettled goes back to the queue. */
  close(): Promise<void>;
}

/** A message parked in a dead-letter queue, with why. */
export interface DeadLetter extends InboundMessage {
  reason: DeadLetterReason | 'unknown';
  lastStatus?: number | undefined;
  lastError?: string | undefined;
  /** Delivery attempts made before it was parked. */
  attempts: number;
  deadLetteredAt?: Date | undefined;
}

export interface DeadLetterStore {
  /** Up to `limit` parked messages, oldest first, left where they are. */
  peek(limit: number): Promise<DeadLetter[]>;
  /** Moves the matching messages (or all) back to the subscription's queue with attempt 1; returns their ids. */
  replay(selection: { ids: string[] } | { all: true }): Promise<string[]>;
  /** Deletes the parked messages with this id; returns how many. */
  remove(id: string): Promise<number>;
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
