// The outbound service: one TargetClient per target. Created from the
// configuration at startup (a missing secret is a ConfigError then, not a
// failed call later); changed at run time by OutboundTarget resources (hot
// reload; a replaced target's client closes after its calls are over); closed
// after the app API, so calls in flight finish.
import { ConfigError } from '../config/load.ts';
import type { Target } from '../config/schema.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { EgressProxies } from './egress-proxy.ts';
import { type CircuitStateName, TargetClient } from './target-client.ts';
import { TargetHeaders } from './target-headers.ts';
import { TargetTls } from './target-tls.ts';

export interface OutboundDeps {
  metrics: Metrics;
  logger: Logger;
  /** Where secretEnv values and the egress proxy's variables (HTTPS_PROXY, ...) come from (process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface TargetState {
  name: string;
  baseUrl: string;
  circuit: CircuitStateName;
  /** The egress proxy's `host:port`, when calls go through one. */
  proxy?: string;
}

/** A target to apply, and where it is written (for messages about it). */
export interface TargetSource {
  target: Target;
  field: string;
}

const CIRCUIT_GAUGE: Record<CircuitStateName, number> = { closed: 0, 'half-open': 1, open: 2 };

export class Outbound {
  private readonly targets = new Map<string, TargetClient>();
  /** Replaced or removed clients still finishing their calls, each until its pool has closed. */
  private readonly retiring = new Map<TargetClient, Promise<void>>();
  private readonly deps: Required<OutboundDeps>;
  /** Read from the environment once, at startup. */
  private readonly proxies: EgressProxies;

  private constructor(deps: OutboundDeps, proxies: EgressProxies) {
    this.deps = { ...deps, env: deps.env ?? process.env };
    this.proxies = proxies;
    deps.metrics.onScrape(() => this.refreshGauges());
  }

  /**
   * Throws a ConfigError naming each egress proxy variable that is not usable, and listing every
   * secret header and TLS file that cannot be resolved; each of those starts with `file` (the
   * configuration file the targets were read from, if any), as the loader's own problems do.
   */
  static create(targets: readonly Target[], deps: OutboundDeps, file?: string): Outbound {
    const fromEnv = EgressProxies.fromEnv(deps.env ?? process.env);
    if (fromEnv.problems !== undefined) throw new ConfigError(fromEnv.problems);
    const outbound = new Outbound(deps, fromEnv.proxies);
    const problems = outbound.apply(targets.map((target, index) => ({ target, field: `targets[${index}]` })));
    if (problems.size > 0) {
      const lines = [...problems.values()].flat();
      throw new ConfigError(file === undefined ? lines : lines.map((line) => `${file}: ${line}`));
    }
    return outbound;
  }

  /**
   * Hot reload: makes `sources` the targets. A changed target gets a new
   * client, so the next call follows the new policy (with a fresh circuit);
   * calls in flight finish on the old one, which closes after them. A target
   * whose secret headers or TLS files cannot be resolved is left as it was (or not added);
   * its problems come back by name.
   */
  apply(sources: readonly TargetSource[]): Map<string, string[]> {
    const problems = new Map<string, string[]>();
    const wanted = new Set(sources.map(({ target }) => target.name));
    for (const [name, client] of this.targets) {
      if (!wanted.has(name)) this.retire(client);
    }
    for (const { target, field } of sources) {
      const current = this.targets.get(target.name);
      if (current !== undefined && JSON.stringify(current.target) === JSON.stringify(target)) continue;
      const { logger, metrics } = this.deps;
      const onReadError = (header: string, code: string) =>
        logger.warn({ target: target.name, header, code }, 'cannot read a secret header file; keeping its last value');
      const onTlsError = (problem: string) =>
        logger.warn(
          { target: target.name, problem },
          'cannot use the TLS files as they are now; keeping the last ones',
        );
      const resolved = TargetHeaders.resolve(target, field, this.deps.env, onReadError);
      const { tls, problems: tlsProblems = [] } = TargetTls.resolve(target, field, onTlsError);
      const found = [...(resolved.problems ?? []), ...tlsProblems];
      if (resolved.headers === undefined || found.length > 0) {
        problems.set(target.name, found);
        continue;
      }
      if (current !== undefined) this.retire(current);
      const proxy = this.proxies.for(new URL(target.baseUrl));
      this.targets.set(
        target.name,
        new TargetClient(target, { metrics, logger, headers: resolved.headers, tls, proxy }),
      );
    }
    return problems;
  }

  /** A replaced or removed target's client finishes the calls it took, then closes. */
  private retire(client: TargetClient): void {
    if (this.targets.get(client.name) === client) this.targets.delete(client.name);
    this.retiring.set(
      client,
      client.retire().then(() => {
        this.retiring.delete(client);
      }),
    );
  }

  /**
   * The gauges, taken from the clients at scrape time rather than kept up to
   * date by every call: a target's calls in flight count those on its
   * retiring clients too, and a target gone with its last call has no series.
   */
  private refreshGauges(): void {
    const { outboundCircuitState, outboundInFlight, outboundQueued } = this.deps.metrics;
    outboundCircuitState.reset();
    outboundInFlight.reset();
    outboundQueued.reset();
    for (const client of this.targets.values()) {
      outboundCircuitState.set({ target: client.name }, CIRCUIT_GAUGE[client.circuitState]);
      outboundInFlight.set({ target: client.name }, client.inFlight);
      outboundQueued.set({ target: client.name }, client.queued);
    }
    for (const client of this.retiring.keys()) {
      outboundInFlight.inc({ target: client.name }, client.inFlight);
      outboundQueued.inc({ target: client.name }, client.queued);
    }
  }

  get(name: string): TargetClient | undefined {
    return this.targets.get(name);
  }

  states(): TargetState[] {
    return [...this.targets.values()].map((client) => ({
      name: client.name,
      baseUrl: client.target.baseUrl,
      circuit: client.circuitState,
      ...(client.proxy === undefined ? {} : { proxy: client.proxy.address }),
    }));
  }

  /** Closes every target's connections once their requests in flight are done, retired targets' too. */
  async close(): Promise<void> {
    await Promise.all([...[...this.targets.values()].map((client) => client.close()), ...this.retiring.values()]);
  }
}
