// The hot-path counters and histograms read exactly as prom-client's own
// would, given the same updates: same names, labels, buckets and values.
import { Counter, Histogram, Registry } from 'prom-client';
import t from 'tap';
import { HotCounter, HotHistogram } from './hot-series.ts';

const BUCKETS = [0.001, 0.005, 0.025, 0.1, 1];
const observations: [string, string, number][] = [
  ['orders', 'GET', 0.0004],
  ['orders', 'GET', 0.001],
  ['orders', 'GET', 0.0031],
  ['orders', 'POST', 0.2],
  ['stock', 'GET', 7],
  ['orders', 'GET', 0.03],
  ['we"ird\\name\n', 'GET', 0.1],
];

t.test('a HotHistogram reads exactly as a prom-client Histogram given the same observations', async (t) => {
  const theirs = new Registry();
  const ours = new Registry();
  const config = { name: 'x_duration_seconds', help: 'How long', labelNames: ['target', 'method'] as const };
  const histogram = new Histogram({ ...config, buckets: BUCKETS, registers: [theirs] });
  const hot = new HotHistogram({ ...config, buckets: [...BUCKETS].reverse(), registers: [ours] });
  for (const [target, method, value] of observations) {
    histogram.observe({ target, method }, value);
    hot.observe({ target, method }, value);
  }
  t.equal(await ours.metrics(), await theirs.metrics());
  t.match(await ours.metrics(), /x_duration_seconds_bucket\{le="0.005",target="orders",method="GET"\} 3/);
  hot.reset();
  t.equal(await ours.metrics(), '# HELP x_duration_seconds How long\n# TYPE x_duration_seconds histogram\n');
});

t.test('a HotCounter reads exactly as a prom-client Counter given the same increments', async (t) => {
  const theirs = new Registry();
  const ours = new Registry();
  const config = { name: 'x_total', help: 'How many', labelNames: ['target', 'status'] as const };
  const counter = new Counter({ ...config, registers: [theirs] });
  const hot = new HotCounter({ ...config, registers: [ours] });
  for (const [target, status, by] of [
    ['orders', '200', 1],
    ['orders', '200', 2],
    ['orders', '503', 1],
    ['stock', 'UPSTREAM_TIMEOUT', 1],
  ] as const) {
    counter.inc({ target, status }, by);
    hot.inc({ target, status }, by);
  }
  t.equal(await ours.metrics(), await theirs.metrics());
  t.match(await ours.metrics(), /x_total\{target="orders",status="200"\} 3/);
  const unlabelled = new HotCounter({ name: 'y_total', help: 'Once', labelNames: [], registers: [ours] });
  unlabelled.inc({});
  t.match(await ours.metrics(), /\ny_total 1(\n|$)/);
});
