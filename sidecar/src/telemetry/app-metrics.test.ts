// App metrics as an app sees them on /metrics: counters add, gauges set,
// histograms observe; every bad entry is refused with its code, and a refused
// request leaves every series as it was.
import t, { type Test } from 'tap';
import { ProblemError } from '../api/problems.ts';
import { APP_METRIC_LIMITS, type AppMetricEntry, AppMetrics } from './app-metrics.ts';

/** The value of one sample on the page (`app_x{a="b"}` style line). */
async function sample(metrics: AppMetrics, line: string): Promise<number | undefined> {
  const text = await metrics.scrape();
  const found = text.split('\n').find((candidate) => candidate.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

/** Asserts `entries` are refused with `code` (and `detail` matching) and that /metrics did not change. */
async function refused(
  t: Test,
  metrics: AppMetrics,
  entries: AppMetricEntry[],
  code: 'METRIC_INVALID' | 'METRIC_LIMIT',
  detail: RegExp,
): Promise<void> {
  const before = await metrics.scrape();
  let thrown: unknown;
  try {
    metrics.apply(entries);
  } catch (error) {
    thrown = error;
  }
  t.ok(thrown instanceof ProblemError, 'refused with a problem');
  t.match(thrown, { code, detail }, `${code}: ${detail}`);
  t.equal(await metrics.scrape(), before, 'nothing applied');
}

t.test('counters add, gauges set, histograms observe; names get the app_ prefix', async (t) => {
  const metrics = new AppMetrics();
  metrics.apply([
    { name: 'orders_total', type: 'counter', value: 2, labels: { region: 'eu' }, help: 'Orders taken' },
    { name: 'orders_total', type: 'counter', value: 3, labels: { region: 'eu' } },
    { name: 'orders_total', type: 'counter', value: 0, labels: { region: 'us' } },
    { name: 'queue_depth', type: 'gauge', value: 7 },
    { name: 'queue_depth', type: 'gauge', value: -4.5 },
    { name: 'latency_seconds', type: 'histogram', value: 0.3, buckets: [0.1, 0.5, 1] },
    { name: 'latency_seconds', type: 'histogram', value: 0.7 },
  ]);
  t.equal(await sample(metrics, 'app_orders_total{region="eu"}'), 5);
  t.equal(await sample(metrics, 'app_orders_total{region="us"}'), 0, 'an increment of 0 creates the series');
  t.equal(await sample(metrics, 'app_queue_depth'), -4.5, 'a gauge takes the last value');
  t.equal(await sample(metrics, 'app_latency_seconds_bucket{le="0.1"}'), 0);
  t.equal(await sample(metrics, 'app_latency_seconds_bucket{le="0.5"}'), 1);
  t.equal(await sample(metrics, 'app_latency_seconds_bucket{le="1"}'), 2);
  t.equal(await sample(metrics, 'app_latency_seconds_bucket{le="+Inf"}'), 2);
  t.equal(await sample(metrics, 'app_latency_seconds_count'), 2);
  t.equal(await sample(metrics, 'app_latency_seconds_sum'), 1);
  const text = await metrics.scrape();
  t.match(text, '# HELP app_orders_total Orders taken\n# TYPE app_orders_total counter');
  t.match(text, '# TYPE app_queue_depth gauge');
  t.match(text, '# TYPE app_latency_seconds histogram');

  metrics.apply([{ name: 'orders_total', type: 'counter', value: 1, labels: { region: 'eu' }, help: 'ignored' }]);
  t.match(await metrics.scrape(), '# HELP app_orders_total Orders taken\n', 'help is kept from the first entry');
  t.equal(await sample(metrics, 'app_orders_total{region="eu"}'), 6);
});

t.test('a histogram without buckets gets the default ones; the same buckets may be sent again', async (t) => {
  const metrics = new AppMetrics();
  metrics.apply([{ name: 'wait_seconds', type: 'histogram', value: 0.02 }]);
  t.equal(await sample(metrics, 'app_wait_seconds_bucket{le="0.025"}'), 1);
  t.equal(await sample(metrics, 'app_wait_seconds_bucket{le="10"}'), 1);
  metrics.apply([
    {
      name: 'wait_seconds',
      type: 'histogram',
      value: 20,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    },
  ]);
  t.equal(await sample(metrics, 'app_wait_seconds_bucket{le="10"}'), 1);
  t.equal(await sample(metrics, 'app_wait_seconds_count'), 2);
});

t.test('label names are a set: their order in an entry does not matter', async (t) => {
  const metrics = new AppMetrics();
  metrics.apply([
    { name: 'hits', type: 'counter', value: 1, labels: { a: '1', b: '2' } },
    { name: 'hits', type: 'counter', value: 1, labels: { b: '2', a: '1' } },
  ]);
  t.equal(await sample(metrics, 'app_hits{a="1",b="2"}'), 2);
});

t.test('label values are escaped on the page', async (t) => {
  const metrics = new AppMetrics();
  metrics.apply([{ name: 'odd', type: 'gauge', value: 1, labels: { path: 'a"b\\c\nd' } }]);
  t.equal(await sample(metrics, 'app_odd{path="a\\"b\\\\c\\nd"}'), 1);
});

t.test('METRIC_INVALID: names, labels, values, help and buckets', async (t) => {
  const metrics = new AppMetrics();
  const long = 'x'.repeat(APP_METRIC_LIMITS.nameLength - 'app_'.length + 1);
  const cases: [string, AppMetricEntry, RegExp][] = [
    ['a name with a dash', { name: 'orders-total', type: 'counter', value: 1 }, /\[a-zA-Z_:\]/],
    ['a name starting with a digit', { name: '1orders', type: 'counter', value: 1 }, /\[a-zA-Z_:\]/],
    ['an empty name', { name: '', type: 'counter', value: 1 }, /\[a-zA-Z_:\]/],
    ['a name too long once prefixed', { name: long, type: 'gauge', value: 1 }, /longer than 124/],
    ['a label name with a dot', { name: 'm', type: 'gauge', value: 1, labels: { 'a.b': 'x' } }, /label "a.b"/],
    ['a label name starting with __', { name: 'm', type: 'gauge', value: 1, labels: { __name__: 'x' } }, /__/],
    ['the label le', { name: 'm', type: 'histogram', value: 1, labels: { le: '1' } }, /"le" is reserved/],
    ['the label quantile', { name: 'm', type: 'gauge', value: 1, labels: { quantile: '1' } }, /reserved/],
    ['a label name too long', { name: 'm', type: 'gauge', value: 1, labels: { ['l'.repeat(65)]: 'x' } }, /64/],
    // JSON can carry "\ud800"; the page is UTF-8, where every lone surrogate becomes U+FFFD: "\ud800" and
    // "\udc00" would be two series here and the same one to Prometheus.
    ['a lone surrogate in a label value', { name: 'm', type: 'gauge', value: 1, labels: { a: 'x\ud800' } }, /Unicode/],
    ['NaN', { name: 'm', type: 'gauge', value: Number.NaN }, /finite/],
    ['Infinity', { name: 'm', type: 'histogram', value: Number.POSITIVE_INFINITY }, /finite/],
    ['a negative counter increment', { name: 'm', type: 'counter', value: -1 }, /cannot be negative/],
    ['help too long', { name: 'm', type: 'gauge', value: 1, help: 'h'.repeat(513) }, /help is longer than 512/],
    ['buckets on a counter', { name: 'm', type: 'counter', value: 1, buckets: [1] }, /only a histogram/],
    ['buckets out of order', { name: 'm', type: 'histogram', value: 1, buckets: [1, 0.5] }, /increasing/],
    ['repeated buckets', { name: 'm', type: 'histogram', value: 1, buckets: [1, 1] }, /increasing/],
    [
      'an infinite bucket',
      { name: 'm', type: 'histogram', value: 1, buckets: [1, Number.POSITIVE_INFINITY] },
      /finite/,
    ],
  ];
  for (const [what, entry, detail] of cases) {
    await t.test(what, (t) => refused(t, metrics, [entry], 'METRIC_INVALID', detail));
  }
});

t.test('a metric keeps the type, label names and buckets it was first sent with', async (t) => {
  const metrics = new AppMetrics();
  metrics.apply([
    { name: 'jobs', type: 'counter', value: 1, labels: { queue: 'a' } },
    { name: 'sizes', type: 'histogram', value: 1, buckets: [1, 10] },
  ]);
  await refused(
    t,
    metrics,
    [{ name: 'jobs', type: 'gauge', value: 1, labels: { queue: 'a' } }],
    'METRIC_INVALID',
    /is a counter; it cannot become a gauge/,
  );
  await refused(t, metrics, [{ name: 'jobs', type: 'counter', value: 1 }], 'METRIC_INVALID', /labels \[queue\]/);
  await refused(
    t,
    metrics,
    [{ name: 'jobs', type: 'counter', value: 1, labels: { queue: 'a', kind: 'b' } }],
    'METRIC_INVALID',
    /labels \[queue\]/,
  );
  await refused(
    t,
    metrics,
    [{ name: 'jobs', type: 'counter', value: 1, labels: { kind: 'a' } }],
    'METRIC_INVALID',
    /labels \[queue\]/,
  );
  await refused(
    t,
    metrics,
    [{ name: 'sizes', type: 'histogram', value: 1, buckets: [1, 100] }],
    'METRIC_INVALID',
    /cannot change/,
  );
  // Within one request too: the first entry decides.
  await refused(
    t,
    metrics,
    [
      { name: 'fresh', type: 'gauge', value: 1 },
      { name: 'fresh', type: 'counter', value: 1 },
    ],
    'METRIC_INVALID',
    /entry \[1\] "fresh": the metric is a gauge/,
  );
});

t.test("no two metrics may show the same sample name (a histogram's _bucket, _sum, _count)", async (t) => {
  const metrics = new AppMetrics();
  metrics.apply([
    { name: 'rt', type: 'histogram', value: 1 },
    { name: 'size_count', type: 'gauge', value: 1 },
  ]);
  await refused(
    t,
    metrics,
    [{ name: 'rt_count', type: 'counter', value: 1 }],
    'METRIC_INVALID',
    /app_rt_count is already a sample of metric "rt"/,
  );
  await refused(t, metrics, [{ name: 'rt_bucket', type: 'gauge', value: 1 }], 'METRIC_INVALID', /already a sample/);
  await refused(
    t,
    metrics,
    [{ name: 'size', type: 'histogram', value: 1 }],
    'METRIC_INVALID',
    /app_size_count is already a sample of metric "size_count"/,
  );
});

t.test('label values that prom-client would file under one key are refused, not merged', async (t) => {
  const metrics = new AppMetrics();
  metrics.apply([{ name: 'pairs', type: 'counter', value: 1, labels: { a: 'x,b:y', b: 'z' } }]);
  await refused(
    t,
    metrics,
    [{ name: 'pairs', type: 'counter', value: 1, labels: { a: 'x', b: 'y,b:z' } }],
    'METRIC_INVALID',
    /another series/,
  );
  metrics.apply([{ name: 'pairs', type: 'counter', value: 1, labels: { a: 'x,b:y', b: 'z' } }]);
  t.equal(await sample(metrics, 'app_pairs{a="x,b:y",b="z"}'), 2);
});

t.test('METRIC_LIMIT: entries per request, labels, label values, buckets', async (t) => {
  const metrics = new AppMetrics();
  const many = Array.from({ length: APP_METRIC_LIMITS.entriesPerRequest + 1 }, () => ({
    name: 'n',
    type: 'counter' as const,
    value: 1,
  }));
  await refused(t, metrics, many, 'METRIC_LIMIT', /1001 entries: at most 1000 per request/);
  metrics.apply(many.slice(1));
  t.equal(await sample(metrics, 'app_n'), 1000, 'exactly the limit is fine');

  const nine = Object.fromEntries(Array.from({ length: 9 }, (_, index) => [`l${index}`, 'v']));
  await refused(
    t,
    metrics,
    [{ name: 'wide', type: 'gauge', value: 1, labels: nine }],
    'METRIC_LIMIT',
    /at most 8 labels/,
  );
  await refused(
    t,
    metrics,
    [{ name: 'v', type: 'gauge', value: 1, labels: { user: 'u'.repeat(129) } }],
    'METRIC_LIMIT',
    /at most 128 characters/,
  );
  metrics.apply([{ name: 'v', type: 'gauge', value: 1, labels: { user: 'u'.repeat(128) } }]);
  const buckets = Array.from({ length: 31 }, (_, index) => index + 1);
  await refused(t, metrics, [{ name: 'h', type: 'histogram', value: 1, buckets }], 'METRIC_LIMIT', /1 to 30 buckets/);
  await refused(
    t,
    metrics,
    [{ name: 'h', type: 'histogram', value: 1, buckets: [] }],
    'METRIC_LIMIT',
    /1 to 30 buckets/,
  );
});

t.test('METRIC_LIMIT: at most 200 metrics; the ones there keep working', async (t) => {
  const metrics = new AppMetrics();
  const names = Array.from({ length: APP_METRIC_LIMITS.metrics }, (_, index) => `m${index}`);
  metrics.apply(names.map((name) => ({ name, type: 'gauge', value: 1 })));
  await refused(t, metrics, [{ name: 'one_more', type: 'gauge', value: 1 }], 'METRIC_LIMIT', /at most 200 app metrics/);
  metrics.apply([{ name: 'm0', type: 'gauge', value: 2 }]);
  t.equal(await sample(metrics, 'app_m0'), 2);
});

t.test('METRIC_LIMIT: at most 1000 series per metric, counted across one request too', async (t) => {
  const metrics = new AppMetrics();
  const series = (from: number, count: number): AppMetricEntry[] =>
    Array.from({ length: count }, (_, index) => ({
      name: 'by_user',
      type: 'counter',
      value: 1,
      labels: { user: `u${from + index}` },
    }));
  metrics.apply(series(0, 600));
  await refused(t, metrics, series(600, 401), 'METRIC_LIMIT', /entry \[400\] "by_user": at most 1000 series/);
  metrics.apply(series(600, 400));
  await refused(t, metrics, series(1000, 1), 'METRIC_LIMIT', /at most 1000 series/);
  metrics.apply(series(999, 1));
  t.equal(await sample(metrics, 'app_by_user{user="u999"}'), 2, 'a series already there still counts');
});

t.test('METRIC_LIMIT: at most 20000 samples over all metrics, a histogram series costing buckets + 3', async (t) => {
  const metrics = new AppMetrics();
  const buckets = Array.from({ length: 30 }, (_, index) => index + 1);
  // 600 series × 33 lines = 19800 samples.
  metrics.apply(
    Array.from({ length: 600 }, (_, index) => ({
      name: 'wide_seconds',
      type: 'histogram' as const,
      value: 1,
      labels: { id: String(index) },
      ...(index === 0 ? { buckets } : {}),
    })),
  );
  const gauges = (from: number, count: number): AppMetricEntry[] =>
    Array.from({ length: count }, (_, index) => ({
      name: 'g',
      type: 'gauge',
      value: 1,
      labels: { id: String(from + index) },
    }));
  metrics.apply(gauges(0, 200));
  t.equal(await sample(metrics, 'app_g{id="199"}'), 1, 'exactly 20000 samples is fine');
  await refused(t, metrics, gauges(200, 1), 'METRIC_LIMIT', /at most 20000 samples/);
});

t.test('all or nothing: one bad entry anywhere and no entry is applied', async (t) => {
  const metrics = new AppMetrics();
  metrics.apply([{ name: 'kept', type: 'counter', value: 1 }]);
  await refused(
    t,
    metrics,
    [
      { name: 'kept', type: 'counter', value: 5 },
      { name: 'new_gauge', type: 'gauge', value: 3 },
      { name: 'new_hist', type: 'histogram', value: 1 },
      { name: 'bad name', type: 'gauge', value: 1 },
    ],
    'METRIC_INVALID',
    /entry \[3\] "bad name"/,
  );
  t.equal(await sample(metrics, 'app_kept'), 1);
  t.notMatch(await metrics.scrape(), /new_gauge|new_hist/, 'no metric was created');
  // A metric refused once may be created afterwards, as anything.
  metrics.apply([{ name: 'new_gauge', type: 'histogram', value: 1 }]);
  t.match(await metrics.scrape(), '# TYPE app_new_gauge histogram');
});
