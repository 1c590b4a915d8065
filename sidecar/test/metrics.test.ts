// /metrics through a real sidecar: what an app POSTs to /v1/metrics shows on
// the ops port with the app_ prefix; bad requests are refused with their code
// and change nothing; and the whole page is read by Prometheus's own text
// parser (support/promparse), with the sidecar's families and the app's.
import t from 'tap';
import { startApp } from './support/app-server.ts';
import { startInProcess } from './support/in-process.ts';
import { type ParsedFamily, parseExposition } from './support/promparse.ts';
import { deliveries, publish, startPush } from './support/push.ts';
import { until } from './support/wait.ts';

// The first run builds the parser (downloading its Go module).
t.setTimeout(300_000);

const postMetrics = (api: string, body: unknown, contentType = 'application/json') =>
  fetch(`${api}/v1/metrics`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

async function scrape(ops: string): Promise<{ page: string; contentType: string | null }> {
  const response = await fetch(`${ops}/metrics`);
  return { page: await response.text(), contentType: response.headers.get('content-type') };
}

const family = (families: ParsedFamily[], name: string) => families.find((candidate) => candidate.name === name);

/** The app_ lines of the page: what a refused request must leave as it was. */
const appLines = (page: string) => page.split('\n').filter((line) => /^(# (HELP|TYPE) )?app_/.test(line));

t.test('POST /v1/metrics: counters add, gauges set, histograms observe, shown as app_ series', async (t) => {
  const { api, ops } = await startInProcess(t, { appId: 'app-metrics' });
  const first = await postMetrics(api, [
    { name: 'orders_total', type: 'counter', value: 2, labels: { region: 'eu' }, help: 'Orders taken' },
    { name: 'orders_total', type: 'counter', value: 1, labels: { region: 'us' } },
    { name: 'queue_depth', type: 'gauge', value: 12 },
    { name: 'checkout_seconds', type: 'histogram', value: 0.2, buckets: [0.1, 0.5, 1] },
  ]);
  t.equal(first.status, 204);
  t.equal(await first.text(), '', 'no body');
  const second = await postMetrics(api, [
    { name: 'orders_total', type: 'counter', value: 3, labels: { region: 'eu' } },
    { name: 'queue_depth', type: 'gauge', value: 4 },
    { name: 'checkout_seconds', type: 'histogram', value: 0.7 },
    { name: 'checkout_seconds', type: 'histogram', value: 3 },
  ]);
  t.equal(second.status, 204);

  const { page, contentType } = await scrape(ops);
  t.match(contentType, /^text\/plain; version=0\.0\.4/);
  const families = await parseExposition(page);
  t.same(family(families, 'app_orders_total'), {
    name: 'app_orders_total',
    type: 'counter',
    help: 'Orders taken',
    metrics: [
      { labels: { region: 'eu' }, value: 5 },
      { labels: { region: 'us' }, value: 1 },
    ],
  });
  t.match(family(families, 'app_queue_depth'), { type: 'gauge', metrics: [{ labels: {}, value: 4 }] });
  t.match(family(families, 'app_checkout_seconds'), {
    type: 'histogram',
    metrics: [
      {
        labels: {},
        count: 3,
        sum: 3.9,
        buckets: [
          { le: 0.1, count: 0 },
          { le: 0.5, count: 1 },
          { le: 1, count: 2 },
          { le: '+Inf', count: 3 },
        ],
      },
    ],
  });

  const openapi = (await (await fetch(`${api}/v1/openapi.json`)).json()) as { paths: Record<string, unknown> };
  t.ok(openapi.paths['/v1/metrics'], 'the route is in the OpenAPI document');
});

t.test('bad requests are refused with their code, and nothing in them is applied', async (t) => {
  const { api, ops } = await startInProcess(t, { appId: 'app-metrics' });
  t.equal(
    (await postMetrics(api, [{ name: 'jobs_total', type: 'counter', value: 1, labels: { queue: 'a' } }])).status,
    204,
  );
  // A metric at its limit of 1000 series (label-value combinations).
  const userSeries = Array.from({ length: 1_000 }, (_, index) => ({
    name: 'by_user_total',
    type: 'counter',
    value: 1,
    labels: { user: `u${index}` },
  }));
  t.equal((await postMetrics(api, userSeries)).status, 204);
  const before = appLines((await scrape(ops)).page);
  t.ok(before.includes('app_jobs_total{queue="a"} 1'), 'the first request applied');

  const goodThenBad = (bad: unknown) => [
    { name: 'jobs_total', type: 'counter', value: 10, labels: { queue: 'a' } },
    { name: 'created_here', type: 'gauge', value: 1 },
    bad,
  ];
  const cases: [string, string | unknown[], number, string, RegExp, string?][] = [
    ['not JSON', '[{"name": ', 400, 'REQUEST_INVALID', /not valid JSON/],
    ['not an array', '{"name": "x"}', 400, 'REQUEST_INVALID', /body/],
    ['an unknown type', goodThenBad({ name: 'x', type: 'summary', value: 1 }), 400, 'REQUEST_INVALID', /type/],
    [
      'an unknown member',
      goodThenBad({ name: 'x', type: 'gauge', value: 1, unit: 's' }),
      400,
      'REQUEST_INVALID',
      /unit/,
    ],
    ['a string value', goodThenBad({ name: 'x', type: 'gauge', value: '1' }), 400, 'REQUEST_INVALID', /value/],
    [
      'a label value that is not a string',
      goodThenBad({ name: 'x', type: 'gauge', value: 1, labels: { a: 1 } }),
      400,
      'REQUEST_INVALID',
      /labels/,
    ],
    ['text/plain', '[]', 415, 'UNSUPPORTED_MEDIA_TYPE', /content-type/, 'text/plain'],
    [
      'a bad name',
      goodThenBad({ name: 'jobs-done', type: 'counter', value: 1 }),
      400,
      'METRIC_INVALID',
      /entry \[2\] "jobs-done"/,
    ],
    [
      'a __ label',
      goodThenBad({ name: 'x', type: 'gauge', value: 1, labels: { __name__: 'y' } }),
      400,
      'METRIC_INVALID',
      /__/,
    ],
    [
      'le on a histogram',
      goodThenBad({ name: 'h', type: 'histogram', value: 1, labels: { le: '1' } }),
      400,
      'METRIC_INVALID',
      /reserved/,
    ],
    [
      'a type change',
      goodThenBad({ name: 'jobs_total', type: 'gauge', value: 1, labels: { queue: 'a' } }),
      400,
      'METRIC_INVALID',
      /is a counter/,
    ],
    [
      'other label names',
      goodThenBad({ name: 'jobs_total', type: 'counter', value: 1, labels: { kind: 'a' } }),
      400,
      'METRIC_INVALID',
      /\[queue\]/,
    ],
    [
      'a negative increment',
      goodThenBad({ name: 'jobs_total', type: 'counter', value: -1, labels: { queue: 'a' } }),
      400,
      'METRIC_INVALID',
      /negative/,
    ],
    // JSON has no Infinity, but a number too large for a double parses to it.
    ['an infinite value', `[{"name": "g", "type": "gauge", "value": 1e999}]`, 400, 'METRIC_INVALID', /finite/],
    [
      'a label value too long',
      goodThenBad({ name: 'x', type: 'gauge', value: 1, labels: { a: 'v'.repeat(129) } }),
      400,
      'METRIC_LIMIT',
      /128/,
    ],
    [
      'a series past the limit',
      goodThenBad({ name: 'by_user_total', type: 'counter', value: 1, labels: { user: 'u1000' } }),
      400,
      'METRIC_LIMIT',
      /entry \[2\] "by_user_total": at most 1000 series/,
    ],
    [
      'too many entries',
      Array.from({ length: 1_001 }, () => goodThenBad(undefined)[0]),
      400,
      'METRIC_LIMIT',
      /at most 1000 per request/,
    ],
  ];
  for (const [what, body, status, code, detail, contentType] of cases) {
    const response = await postMetrics(api, body, contentType);
    t.equal(response.status, status, `${what}: status`);
    t.match(response.headers.get('content-type'), /^application\/problem\+json/, `${what}: a problem`);
    t.match(await response.json(), { status, code, detail }, `${what}: ${code}`);
  }
  t.same(appLines((await scrape(ops)).page), before, 'no refused request changed any app series');
});

t.test("the whole /metrics page parses as Prometheus text, with the sidecar's families and the app's", async (t) => {
  const app = await startApp(t);
  const { api, ops, topic, sidecar, name } = await startPush(t, app);
  // One message through: publish and delivery series get samples.
  await publish(api, topic, '{"n": 1}', { 'content-type': 'application/json' });
  await until('the message acked', async () => (await deliveries(sidecar, name, 'acked')) === 1);
  t.equal(
    (
      await postMetrics(api, [
        { name: 'orders_total', type: 'counter', value: 1, labels: { region: 'eu' } },
        { name: 'temperature_celsius', type: 'gauge', value: -3.5, help: 'Help with "quotes" and a \\ backslash' },
        { name: 'odd_labels', type: 'gauge', value: 1, labels: { text: 'a "quoted"\nline \\ and ü' } },
        { name: 'checkout_seconds', type: 'histogram', value: 0.3 },
      ])
    ).status,
    204,
  );

  const { page } = await scrape(ops);
  const families = await parseExposition(page);
  const types = Object.fromEntries(families.map((parsed) => [parsed.name, parsed.type]));
  t.match(types, {
    outrigger_build_info: 'gauge',
    outrigger_ready: 'gauge',
    outrigger_broker_connected: 'gauge',
    outrigger_publishes_total: 'counter',
    outrigger_publish_duration_seconds: 'histogram',
    outrigger_api_request_duration_seconds: 'histogram',
    outrigger_deliveries_total: 'counter',
    outrigger_delivery_duration_seconds: 'histogram',
    outrigger_deliveries_in_flight: 'gauge',
    outrigger_subscription_consuming: 'gauge',
    outrigger_app_healthy: 'gauge',
    process_cpu_seconds_total: 'counter',
    process_resident_memory_bytes: 'gauge',
    app_orders_total: 'counter',
    app_temperature_celsius: 'gauge',
    app_odd_labels: 'gauge',
    app_checkout_seconds: 'histogram',
  });
  t.ok(
    families.some((parsed) => parsed.name.startsWith('nodejs_')),
    'nodejs_* process metrics are there',
  );
  t.match(family(families, 'outrigger_deliveries_total')?.metrics, [
    { labels: { subscription: name, outcome: 'acked' }, value: 1 },
  ]);
  t.match(family(families, 'outrigger_subscription_consuming')?.metrics, [
    { labels: { subscription: name }, value: 1 },
  ]);
  t.match(family(families, 'outrigger_broker_connected')?.metrics, [{ labels: {}, value: 1 }]);
  t.equal(family(families, 'app_temperature_celsius')?.help, 'Help with "quotes" and a \\ backslash');
  t.same(family(families, 'app_odd_labels')?.metrics, [{ labels: { text: 'a "quoted"\nline \\ and ü' }, value: 1 }]);
  t.match(family(families, 'app_checkout_seconds')?.metrics, [{ count: 1, sum: 0.3 }]);
  t.notOk(
    families.some((parsed) => !/^(outrigger|process|nodejs|app)_/.test(parsed.name)),
    'every family is the sidecar’s, the process’s or the app’s',
  );
  t.same(
    families.filter((parsed) => parsed.name.startsWith('outrigger_outbox_')).map((parsed) => parsed.name),
    [],
    'no outbox series without an outbox: its gauges would read as a relay down',
  );
});

t.test('the parser is a real check: a malformed page is refused', async (t) => {
  await t.rejects(parseExposition('# TYPE x counter\nx{a="b} 1\n'), /could not parse/);
  await t.rejects(parseExposition('# TYPE x counter\nx 1\n# TYPE x gauge\nx 2\n'), /could not parse/);
});
