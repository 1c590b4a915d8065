// The outbound service: one TargetClient per configured target. Created from
// the configuration at startup (a missing secret is a ConfigError then, not a
// failed call later); closed after the app API, so calls in flight finish.
import { ConfigError } from '../config/load.ts';
import type { Target } from '../config/schema.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { type CircuitStateName, TargetClient } from './target-client.ts';
import { TargetHeaders } from './target-headers.ts';

export interface OutboundDeps {
  metrics: Metrics;
  logger: Logger;
  /** Where secretEnv values come from (process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface TargetState {
  name: string;
  baseUrl: string;
  circuit: CircuitStateName;
}

export class Outbound {
  private readonly targets: Map<string, TargetClient>;

  private constructor(targets: Map<string, TargetClient>) {
    this.targets = targets;
  }

  /** Throws a ConfigError listing every configured header that cannot be resolved. */
  static create(targets: readonly Target[], { metrics, logger, env = process.env }: OutboundDeps): Outbound {
    const problems: string[] = [];
    const resolved = targets.map((target, index) => {
      const onReadError = (header: string, code: string) =>
        logger.warn({ target: target.name, header, code }, 'cannot read a secret header file; keeping its last value');
      const { headers, problems: found } = TargetHeaders.resolve(target, index, env, onReadError);
      if (found !== undefined) problems.push(...found);
      return headers;
    });
    if (problems.length > 0) throw new ConfigError(problems);
    const clients = new Map<string, TargetClient>();
    targets.forEach((target, index) => {
      const headers = resolved[index] as TargetHeaders;
      clients.set(target.name, new TargetClient(target, { metrics, logger, headers }));
    });
    metrics.onScrape(() => {
      for (const client of clients.values()) client.refreshGauges();
    });
    return new Outbound(clients);
  }

  get(name: string): TargetClient | undefined {
    return this.targets.get(name);
  }

  states(): TargetState[] {
    return [...this.targets.values()].map((client) => ({
      name: client.name,
      baseUrl: client.baseUrl,
      circuit: client.circuitState,
    }));
  }

  /** Closes every target's connections once their requests in flight are done. */
  async close(): Promise<void> {
    await Promise.all([...this.targets.values()].map((client) => client.close()));
  }
}
