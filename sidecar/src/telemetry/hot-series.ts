// Counters and histograms for the sidecar's hot paths (every API request,
// publish, delivery and outbound call updates several), shown by prom-client's
// registry like its own. prom-client finds a series from its labels on every
// update: it checks each label name, joins names and values into a key string
// and looks the bucket up by its bound turned into a string. In an A/B of the
// sidecar with and without them, the four updates of an outbound call cost
// 5-6 µs of the 55-60 µs of CPU a call takes; alone, in a loop, 0.2-0.45 µs
// each. Here the label values lead through one Map per label to the series:
// 0.04 µs in the same loop.
import type { Metric, Registry } from 'prom-client';

/** Label values are strings: 200 and '200' would be one series to Prometheus but two here. */
type Labels<L extends string> = Record<L, string>;

interface Config<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  registers: Registry[];
  /** One of labelNames whose values are bounded (shared with the other metrics that carry the label). */
  bounded?: BoundedLabel<L> | undefined;
}

/**
 * The values a label fed by the app may take (a topic per customer would add
 * series, memory and /metrics lines without end): the first `limit` distinct
 * ones as they are, every later one as `overflow`. Metrics that share one
 * keep the same values, so a topic counted on one is timed on the other.
 */
export class BoundedLabel<L extends string> {
  readonly name: L;
  readonly overflow: string;
  private readonly limit: number;
  private readonly kept = new Set<string>();

  constructor(name: L, limit: number, overflow: string) {
    this.name = name;
    this.limit = limit;
    this.overflow = overflow;
  }

  /** The value to record for `value`. */
  value(value: string): string {
    if (this.kept.has(value)) return value;
    if (this.kept.size >= this.limit) return this.overflow;
    this.kept.add(value);
    return value;
  }
}

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** What prom-client's registry reads from a metric when it is scraped. */
interface Exposed {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: Sample[];
}

abstract class HotMetric<L extends string, S> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum';
  abstract readonly type: 'counter' | 'histogram';
  private readonly labelNames: readonly L[];
  private readonly bounded: BoundedLabel<L> | undefined;
  /** Label values, one level of Map per label in labelNames' order, down to the series. */
  private readonly tree = new Map<string, unknown>();
  private readonly entries: { labels: Labels<L>; series: S }[] = [];

  constructor(config: Config<L>) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames;
    this.bounded = config.bounded;
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The series of these labels, made on first use. */
  protected series(given: Labels<L>): S {
    let labels = given;
    const { bounded } = this;
    if (bounded !== undefined) {
      const value = labels[bounded.name];
      const kept = bounded.value(value);
      if (kept !== value) labels = { ...labels, [bounded.name]: kept };
    }
    const names = this.labelNames;
    let level = this.tree;
    const last = names.length - 1;
    for (let at = 0; at < last; at++) {
      const value = labels[names[at] as L];
      let next = level.get(value) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }
    const leaf = last < 0 ? '' : labels[names[last] as L];
    const found = level.get(leaf) as S | undefined;
    return found ?? this.add(level, leaf, labels);
  }

  private add(level: Map<string, unknown>, leaf: string, labels: Labels<L>): S {
    const own = {} as Labels<L>;
    for (const name of this.labelNames) own[name] = labels[name];
    const series = this.create();
    level.set(leaf, series);
    this.entries.push({ labels: own, series });
    return series;
  }

  async get(): Promise<Exposed> {
    const values: Sample[] = [];
    for (const { labels, series } of this.entries) this.expose(labels, series, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.tree.clear();
    this.entries.length = 0;
  }

  protected abstract create(): S;
  protected abstract expose(labels: Labels<L>, series: S, into: Sample[]): void;
}

interface CounterSeries {
  value: number;
}

export class HotCounter<L extends string> extends HotMetric<L, CounterSeries> {
  readonly type = 'counter';

  inc(labels: Labels<L>, by = 1): void {
    this.series(labels).value += by;
  }

  protected create(): CounterSeries {
    return { value: 0 };
  }

  protected expose(labels: Labels<L>, series: CounterSeries, into: Sample[]): void {
    into.push({ labels, value: series.value });
  }
}

class HistogramSeries {
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  private readonly bounds: readonly number[];

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const { bounds } = this;
    let at = 0;
    while (at < bounds.length && value > (bounds[at] as number)) at++;
    this.counts[at] = (this.counts[at] as number) + 1;
    this.sum += value;
    this.count += 1;
  }
}

export class HotHistogram<L extends string> extends HotMetric<L, HistogramSeries> {
  readonly type = 'histogram';
  private readonly buckets: readonly number[];

  constructor(config: Config<L> & { buckets: readonly number[] }) {
    super(config);
    this.buckets = [...config.buckets].sort((a, b) => a - b);
  }

  observe(labels: Labels<L>, value: number): void {
    this.series(labels).observe(value);
  }

  protected create(): HistogramSeries {
    return new HistogramSeries(this.buckets);
  }

  protected expose(labels: Labels<L>, series: HistogramSeries, into: Sample[]): void {
    const bucket = `${this.name}_bucket`;
    let cumulative = 0;
    this.buckets.forEach((bound, at) => {
      cumulative += series.counts[at] as number;
      into.push({ labels: { le: bound, ...labels }, value: cumulative, metricName: bucket });
    });
    into.push({ labels: { le: '+Inf', ...labels }, value: series.count, metricName: bucket });
    into.push({ labels, value: series.sum, metricName: `${this.name}_sum` });
    into.push({ labels, value: series.count, metricName: `${this.name}_count` });
  }
}
