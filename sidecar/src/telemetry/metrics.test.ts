// The sidecar's own series stay bounded whatever the app does: an app that
// publishes to ever new topics must not add series (memory, /metrics lines)
// without end.
import t from 'tap';
import { Metrics, TOPIC_LABEL_LIMIT, TOPIC_OVERFLOW } from './metrics.ts';

/** The distinct values of `label` over the samples of `name` (a histogram's _bucket, _sum, _count included). */
function labelValues(page: string, name: string, label: string): Set<string> {
  const values = new Set<string>();
  const pattern = new RegExp(`^${name}(_bucket|_sum|_count)?\\{.*\\b${label}="([^"]*)"`);
  for (const line of page.split('\n')) {
    const found = pattern.exec(line);
    if (found?.[2] !== undefined) values.add(found[2]);
  }
  return values;
}

const sample = (page: string, line: string) =>
  Number(
    page
      .split('\n')
      .find((candidate) => candidate.startsWith(`${line} `))
      ?.slice(line.length + 1),
  );

t.test('the topic label takes the first 1000 topics; publishes to any other count under _other', async (t) => {
  const metrics = new Metrics({ version: 'test', appId: 'topics' });
  const extra = 500;
  // What POST /v1/publish/:topic records for each publish.
  for (let index = 0; index < TOPIC_LABEL_LIMIT + extra; index++) {
    const topic = `orders.${index}`;
    metrics.publishes.inc({ topic, outcome: 'routed' });
    metrics.publishDuration.observe({ topic }, 0.001);
  }
  // A topic seen before the limit keeps its own series; one first seen after it does not get one.
  metrics.publishes.inc({ topic: 'orders.0', outcome: 'backpressure' });
  metrics.publishes.inc({ topic: `orders.${TOPIC_LABEL_LIMIT}`, outcome: 'backpressure' });

  const page = await metrics.scrape();
  const counted = labelValues(page, 'outrigger_publishes_total', 'topic');
  const timed = labelValues(page, 'outrigger_publish_duration_seconds', 'topic');
  t.equal(counted.size, TOPIC_LABEL_LIMIT + 1, 'publishes_total: 1000 topics and _other');
  t.same(timed, counted, 'publish_duration_seconds has the same topics');
  t.ok(counted.has(TOPIC_OVERFLOW));
  t.notOk(counted.has(`orders.${TOPIC_LABEL_LIMIT}`), 'the 1001st topic has no series of its own');
  t.equal(sample(page, 'outrigger_publishes_total{topic="_other",outcome="routed"}'), extra);
  t.equal(sample(page, 'outrigger_publishes_total{topic="_other",outcome="backpressure"}'), 1);
  t.equal(sample(page, 'outrigger_publishes_total{topic="orders.0",outcome="backpressure"}'), 1);
  t.equal(sample(page, 'outrigger_publish_duration_seconds_count{topic="_other"}'), extra);
  t.equal(sample(page, 'outrigger_publish_duration_seconds_count{topic="orders.999"}'), 1);
});

t.test('both publish metrics share one list of topics: a topic only counted still takes its place', async (t) => {
  const metrics = new Metrics({ version: 'test', appId: 'topics' });
  // Counted, never timed (a publish refused before it reached the broker).
  metrics.publishes.inc({ topic: 'refused.first', outcome: 'backpressure' });
  for (let index = 0; index < TOPIC_LABEL_LIMIT; index++) {
    metrics.publishes.inc({ topic: `orders.${index}`, outcome: 'routed' });
    metrics.publishDuration.observe({ topic: `orders.${index}` }, 0.001);
  }
  const page = await metrics.scrape();
  const timed = labelValues(page, 'outrigger_publish_duration_seconds', 'topic');
  t.notOk(timed.has(`orders.${TOPIC_LABEL_LIMIT - 1}`), 'the last one is past the shared limit on the histogram too');
  t.equal(sample(page, 'outrigger_publish_duration_seconds_count{topic="_other"}'), 1);
  t.equal(sample(page, `outrigger_publishes_total{topic="_other",outcome="routed"}`), 1);
});
