// One AMQP connection that recovers by itself (amqplib's opt-in recovery:
// exponential back-off with jitter, forever). The sidecar starts and stays up
// while the broker is down; readiness follows the connection.
import type { Writable } from 'node:stream';
import { type ChannelModel, connect, type RecoveringChannelModel } from 'amqplib';
import type { Logger } from '../../telemetry/logger.ts';
import { redactUrl } from '../../telemetry/logger.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import type { BrokerState } from '../broker.ts';

export interface RabbitConnectionOptions {
  url: string;
  heartbeatMs: number;
  reconnect: { initialMs: number; maxMs: number };
  /** Shown in the broker's management UI and `rabbitmqctl list_connections`. */
  connectionName: string;
  logger: Logger;
  metrics: Metrics;
}

/** Called with each new underlying connection: the first one and every recovery. */
export type ConnectedListener = (model: ChannelModel) => Promise<void>;

export class RabbitConnection {
  private model: RecoveringChannelModel | undefined;
  private readonly connectedListeners: ConnectedListener[] = [];
  private current: BrokerState = 'connecting';
  private lastError = 'not connected yet';
  readonly address: string;
  private readonly options: RabbitConnectionOptions;

  constructor(options: RabbitConnectionOptions) {
    this.options = options;
    this.address = redactUrl(options.url);
  }

  get state(): BrokerState {
    return this.current;
  }

  /**
   * Runs `listener` on every new connection before the sidecar reports it
   * connected: channels, topology and consumers are re-created there.
   */
  onConnected(listener: ConnectedListener): void {
    this.connectedListeners.push(listener);
  }

  readonly health = {
    name: 'broker',
    check: () => ({
      ok: this.current === 'connected',
      detail: this.current === 'connected' ? `connected to ${this.address}` : `${this.current}: ${this.lastError}`,
    }),
  };

  async start(): Promise<void> {
    const { url, heartbeatMs, reconnect, connectionName, logger, metrics } = this.options;
    const model = await connect(withHeartbeat(url, heartbeatMs), {
      clientProperties: { connection_name: connectionName },
      recovery: {
        waitForConnect: false,
        initialDelay: reconnect.initialMs,
        maxDelay: reconnect.maxMs,
        factor: 2,
        jitter: 0.2,
        maxRetries: Number.POSITIVE_INFINITY,
        // Runs on every new connection before 'connect'; if it throws, amqplib
        // closes that connection and tries again later.
        setup: async (connection: ChannelModel) => {
          coalesceWrites(connection);
          for (const listener of this.connectedListeners) await listener(connection);
        },
      },
    });
    this.model = model;
    model.on('connect', () => {
      this.setState('connected');
      metrics.brokerConnects.inc();
      logger.info({ broker: this.address }, 'broker connected');
    });
    model.on('disconnect', (error: Error) => {
      this.lastError = error.message;
      this.setState('connecting');
      logger.warn({ broker: this.address, err: error.message }, 'broker connection lost; reconnecting');
    });
    model.on('connect-failed', (error: Error) => {
      this.lastError = error.message;
      metrics.brokerConnectFailures.inc();
      logger.debug({ err: error.message }, 'broker connection attempt failed');
    });
    model.on('reconnect-scheduled', ({ attempt, delay }: { attempt: number; delay: number }) => {
      logger.debug({ attempt, delayMs: delay, err: this.lastError }, 'broker reconnect scheduled');
    });
    model.on('blocked', (reason: string) => {
      this.lastError = `broker blocked publishing: ${reason}`;
      this.setState('blocked');
      logger.warn({ reason }, 'broker blocked the connection (resource alarm)');
    });
    model.on('unblocked', () => {
      this.setState('connected');
      logger.info('broker unblocked the connection');
    });
    model.on('error', (error: Error) => {
      this.lastError = error.message;
      logger.warn({ err: error.message }, 'broker connection error');
    });
  }

  async close(): Promise<void> {
    const model = this.model;
    this.model = undefined;
    this.setState('closed');
    this.lastError = 'closed';
    if (model === undefined) return;
    try {
      await model.close();
    } catch (error) {
      this.options.logger.debug({ err: (error as Error).message }, 'broker connection was already closed');
    }
  }

  private setState(state: BrokerState): void {
    if (this.current === 'closed') return;
    this.current = state;
    this.options.metrics.brokerConnected.set(state === 'connected' || state === 'blocked' ? 1 : 0);
  }
}

/** Sets the heartbeat (seconds) in the URL's query unless the URL already sets one. */
function withHeartbeat(url: string, heartbeatMs: number): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has('heartbeat'))
    parsed.searchParams.set('heartbeat', String(Math.round(heartbeatMs / 1000)));
  return parsed.toString();
}

/**
 * Writes to the connection's socket within one turn of the event loop leave in
 * one system call (cork now, uncork on the next tick). amqplib writes every
 * frame on its own; with many publishes in flight that was one write per
 * message, a large share of the sidecar's CPU under load.
 */
function coalesceWrites(model: ChannelModel): void {
  const socket = (model as unknown as { connection?: { stream?: Writable } }).connection?.stream;
  if (socket === undefined || typeof socket.cork !== 'function') return;
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as Writable['write'];
}
