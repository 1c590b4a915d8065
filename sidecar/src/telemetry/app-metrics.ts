// The app's own metrics (POST /v1/metrics): a prom-client registry of their
// own, every name prefixed app_, so nothing an app sends can touch the
// sidecar's series. Each request is checked whole before any of it is applied,
// and hard limits keep memory and the /metrics page bounded whatever the app
// sends (docs/api.md, "App metrics").
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ProblemError } from '../api/problems.ts';

export const APP_METRIC_PREFIX = 'app_';

export const APP_METRIC_LIMITS = {
  /** Distinct metric names. */
  metrics: 200,
  /** Label-value combinations of one metric. */
  seriesPerMetric: 1_000,
  /** Sample lines on /metrics over all app metrics: 1 per counter or gauge series, buckets + 3 per histogram series. */
  samples: 20_000,
  entriesPerRequest: 1_000,
  labelsPerMetric: 8,
  labelValueLength: 128,
  buckets: 30,
  /** Of the exposed name, prefix included. */
  nameLength: 128,
  labelNameLength: 64,
  helpLength: 512,
} as const;

export type AppMetricType = 'counter' | 'gauge' | 'histogram';

export interface AppMetricEntry {
  /** Without the prefix. */
  name: string;
  type: AppMetricType;
  /** Counter: the increment (>= 0). Gauge: the new value. Histogram: one observation. */
  value: number;
  labels?: Record<string, string> | undefined;
  /** Kept from the first entry that creates the metric. */
  help?: string | undefined;
  /** Histogram upper bounds (+Inf is implied); only when the metric is created, or the same again. */
  buckets?: number[] | undefined;
}

/** prom-client's defaults, in seconds. */
const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** `le` carries histogram bounds and `quantile` summary quantiles: an app label of that name would be ambiguous. */
const RESERVED_LABELS = new Set(['le', 'quantile']);
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

interface Family {
  type: AppMetricType;
  /** Sorted. */
  labelNames: string[];
  buckets: number[];
  /** Sample lines per series. */
  samples: number;
  /** prom-client's series key → the exact label values (see seriesKeys). */
  series: Map<string, string>;
}

interface Live extends Family {
  metric: Counter | Gauge | Histogram;
}

export class AppMetrics {
  readonly registry = new Registry();
  private readonly families = new Map<string, Live>();
  /** Every sample name an app family shows on /metrics (a histogram's _bucket, _sum, _count too) → that family. */
  private readonly occupied = new Map<string, string>();
  private samples = 0;

  /** The Prometheus text of the app metrics. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  /** Checks every entry, then applies them all; throws METRIC_INVALID or METRIC_LIMIT and changes nothing if any is bad. */
  apply(entries: readonly AppMetricEntry[]): void {
    if (entries.length > APP_METRIC_LIMITS.entriesPerRequest) {
      throw new ProblemError(
        'METRIC_LIMIT',
        `${entries.length} entries: at most ${APP_METRIC_LIMITS.entriesPerRequest} per request`,
      );
    }
    const plan = new Plan(this.families, this.occupied, this.samples);
    entries.forEach((entry, index) => {
      try {
        plan.check(entry);
      } catch (error) {
        if (!(error instanceof ProblemError)) throw error;
        throw new ProblemError(error.code, `entry [${index}] "${entry.name.slice(0, 64)}": ${error.detail}`);
      }
    });
    for (const entry of entries) this.record(entry);
  }

  /** Applies one checked entry. */
  private record(entry: AppMetricEntry): void {
    const family = this.families.get(entry.name) ?? this.create(entry);
    const labels = entry.labels ?? {};
    const [hash, exact] = seriesKeys(family.labelNames, labels);
    if (!family.series.has(hash)) {
      family.series.set(hash, exact);
      this.samples += family.samples;
    }
    const { metric } = family;
    if (metric instanceof Counter) metric.inc(labels, entry.value);
    else if (metric instanceof Gauge) metric.set(labels, entry.value);
    else metric.observe(labels, entry.value);
  }

  private create(entry: AppMetricEntry): Live {
    const family = shapeOf(entry);
    const name = APP_METRIC_PREFIX + entry.name;
    const config = {
      name,
      help: entry.help || `App metric ${name}, sent to POST /v1/metrics`,
      labelNames: family.labelNames,
      registers: [this.registry],
    };
    const metric =
      family.type === 'counter'
        ? new Counter(config)
        : family.type === 'gauge'
          ? new Gauge(config)
          : new Histogram({ ...config, buckets: family.buckets });
    const live = { ...family, metric };
    this.families.set(entry.name, live);
    for (const sample of sampleNames(entry.name, family.type)) this.occupied.set(sample, entry.name);
    return live;
  }
}

/** What one request would add, so every entry is checked against the state all the earlier ones would leave. */
class Plan {
  private readonly families: ReadonlyMap<string, Family>;
  private readonly occupied: ReadonlyMap<string, string>;
  private samples: number;
  private readonly newFamilies = new Map<string, Family>();
  private readonly newOccupied = new Map<string, string>();
  /** Family name → prom-client series key → exact label values, for series this request adds. */
  private readonly newSeries = new Map<string, Map<string, string>>();

  constructor(families: ReadonlyMap<string, Family>, occupied: ReadonlyMap<string, string>, samples: number) {
    this.families = families;
    this.occupied = occupied;
    this.samples = samples;
  }

  check(entry: AppMetricEntry): void {
    checkName(entry.name);
    checkValue(entry);
    checkLabels(entry.labels ?? {});
    if (entry.help !== undefined && entry.help.length > APP_METRIC_LIMITS.helpLength) {
      throw new ProblemError('METRIC_INVALID', `help is longer than ${APP_METRIC_LIMITS.helpLength} characters`);
    }
    const known = this.families.get(entry.name) ?? this.newFamilies.get(entry.name);
    const family = known === undefined ? this.addFamily(entry) : sameShape(known, entry);
    this.addSeries(entry, family);
  }

  private addFamily(entry: AppMetricEntry): Family {
    const family = shapeOf(entry);
    const samples = sampleNames(entry.name, family.type);
    for (const sample of samples) {
      const owner = this.occupied.get(sample) ?? this.newOccupied.get(sample);
      if (owner !== undefined) {
        throw new ProblemError(
          'METRIC_INVALID',
          `${APP_METRIC_PREFIX}${sample} is already a sample of metric "${owner}" (a histogram shows _bucket, _sum and _count)`,
        );
      }
    }
    if (this.families.size + this.newFamilies.size >= APP_METRIC_LIMITS.metrics) {
      throw new ProblemError('METRIC_LIMIT', `at most ${APP_METRIC_LIMITS.metrics} app metrics`);
    }
    this.newFamilies.set(entry.name, family);
    for (const sample of samples) this.newOccupied.set(sample, entry.name);
    return family;
  }

  private addSeries(entry: AppMetricEntry, family: Family): void {
    const [hash, exact] = seriesKeys(family.labelNames, entry.labels ?? {});
    let added = this.newSeries.get(entry.name);
    const seen = family.series.get(hash) ?? added?.get(hash);
    if (seen === exact) return;
    if (seen !== undefined) {
      // prom-client keys series by name:value pairs joined with commas; values that contain ",name:" could alias.
      throw new ProblemError('METRIC_INVALID', 'these label values would be mistaken for another series of the metric');
    }
    if (family.series.size + (added?.size ?? 0) >= APP_METRIC_LIMITS.seriesPerMetric) {
      throw new ProblemError(
        'METRIC_LIMIT',
        `at most ${APP_METRIC_LIMITS.seriesPerMetric} series (label-value combinations) per metric`,
      );
    }
    if (this.samples + family.samples > APP_METRIC_LIMITS.samples) {
      throw new ProblemError('METRIC_LIMIT', `at most ${APP_METRIC_LIMITS.samples} samples over all app metrics`);
    }
    this.samples += family.samples;
    if (added === undefined) {
      added = new Map();
      this.newSeries.set(entry.name, added);
    }
    added.set(hash, exact);
  }
}

function checkName(name: string): void {
  if (!METRIC_NAME.test(name)) throw new ProblemError('METRIC_INVALID', 'the name must match [a-zA-Z_:][a-zA-Z0-9_:]*');
  if (APP_METRIC_PREFIX.length + name.length > APP_METRIC_LIMITS.nameLength) {
    throw new ProblemError(
      'METRIC_INVALID',
      `the name is longer than ${APP_METRIC_LIMITS.nameLength - APP_METRIC_PREFIX.length} characters`,
    );
  }
}

function checkValue({ type, value }: AppMetricEntry): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ProblemError('METRIC_INVALID', 'the value must be a finite number');
  }
  if (type === 'counter' && value < 0) {
    throw new ProblemError('METRIC_INVALID', 'a counter value is an increment and cannot be negative');
  }
}

function checkLabels(labels: Record<string, string>): void {
  const names = Object.keys(labels);
  if (names.length > APP_METRIC_LIMITS.labelsPerMetric) {
    throw new ProblemError('METRIC_LIMIT', `at most ${APP_METRIC_LIMITS.labelsPerMetric} labels per metric`);
  }
  for (const name of names) {
    const shown = name.slice(0, 64);
    if (!LABEL_NAME.test(name) || name.length > APP_METRIC_LIMITS.labelNameLength) {
      throw new ProblemError(
        'METRIC_INVALID',
        `label "${shown}": a label name must match [a-zA-Z_][a-zA-Z0-9_]* and be at most ${APP_METRIC_LIMITS.labelNameLength} characters`,
      );
    }
    if (name.startsWith('__')) {
      throw new ProblemError('METRIC_INVALID', `label "${shown}": names starting with __ are reserved to Prometheus`);
    }
    if (RESERVED_LABELS.has(name)) throw new ProblemError('METRIC_INVALID', `label "${name}" is reserved`);
    const value = labels[name] ?? '';
    if (value.length > APP_METRIC_LIMITS.labelValueLength) {
      throw new ProblemError(
        'METRIC_LIMIT',
        `label "${name}": values are at most ${APP_METRIC_LIMITS.labelValueLength} characters`,
      );
    }
    // The page is UTF-8, where every lone surrogate becomes U+FFFD: two values would show as one series.
    if (!value.isWellFormed()) {
      throw new ProblemError(
        'METRIC_INVALID',
        `label "${name}": the value is not well-formed Unicode (a lone surrogate)`,
      );
    }
  }
}

/** A new family as `entry` would create it, or METRIC_INVALID / METRIC_LIMIT for its buckets. */
function shapeOf(entry: AppMetricEntry): Family {
  const labelNames = Object.keys(entry.labels ?? {}).sort();
  if (entry.type !== 'histogram') {
    if (entry.buckets !== undefined) throw new ProblemError('METRIC_INVALID', 'only a histogram has buckets');
    return { type: entry.type, labelNames, buckets: [], samples: 1, series: new Map() };
  }
  const buckets = entry.buckets ?? DEFAULT_BUCKETS;
  if (buckets.length === 0 || buckets.length > APP_METRIC_LIMITS.buckets) {
    throw new ProblemError(
      'METRIC_LIMIT',
      `a histogram has 1 to ${APP_METRIC_LIMITS.buckets} buckets (+Inf is implied)`,
    );
  }
  buckets.forEach((bound, index) => {
    if (typeof bound !== 'number' || !Number.isFinite(bound) || (index > 0 && bound <= (buckets[index - 1] ?? 0))) {
      throw new ProblemError('METRIC_INVALID', 'buckets must be finite numbers in increasing order (+Inf is implied)');
    }
  });
  // Each histogram series shows one line per bucket, +Inf, _sum and _count.
  return { type: 'histogram', labelNames, buckets: [...buckets], samples: buckets.length + 3, series: new Map() };
}

/** `known` if `entry` fits the metric as first sent; METRIC_INVALID otherwise. */
function sameShape(known: Family, entry: AppMetricEntry): Family {
  if (entry.type !== known.type) {
    throw new ProblemError('METRIC_INVALID', `the metric is a ${known.type}; it cannot become a ${entry.type}`);
  }
  const names = Object.keys(entry.labels ?? {}).sort();
  if (names.join(',') !== known.labelNames.join(',')) {
    throw new ProblemError(
      'METRIC_INVALID',
      `the metric has the labels [${known.labelNames.join(', ')}]; every entry must carry exactly those`,
    );
  }
  if (entry.buckets !== undefined && entry.buckets.join(',') !== known.buckets.join(',')) {
    throw new ProblemError('METRIC_INVALID', "a histogram's buckets are set when it is created and cannot change");
  }
  return known;
}

/** The sample names (without prefix) a family shows on /metrics. */
function sampleNames(name: string, type: AppMetricType): string[] {
  return type === 'histogram' ? [name, ...HISTOGRAM_SUFFIXES.map((suffix) => name + suffix)] : [name];
}

/** [the key prom-client files the series under, the exact label values]. */
function seriesKeys(labelNames: readonly string[], labels: Record<string, string>): [string, string] {
  const hash = labelNames.map((name) => `${name}:${labels[name]},`).join('');
  return [hash, JSON.stringify(labelNames.map((name) => labels[name]))];
}
