// What the rest of the sidecar knows of the broker. Nothing outside broker/
// imports amqplib.
import type { HealthCheck } from '../health/readiness.ts';

export type BrokerState = 'connecting' | 'connected' | 'blocked' | 'closed';

export interface Broker {
  readonly state: BrokerState;
  /** The broker's address with the password masked. */
  readonly address: string;
  /** Starts connecting in the background; never waits for the broker. */
  start(): Promise<void>;
  /** Closes the connection cleanly. */
  close(): Promise<void>;
  readonly health: HealthCheck;
}
