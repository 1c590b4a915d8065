// One trace per workflow: an app's publish, the message hop through RabbitMQ
// and the push to the consuming app arrive at a real OTLP/HTTP receiver from
// two sidecar processes as one trace, parent by parent, with the messaging
// and HTTP semantic-convention attributes; log lines carry the trace ids.
import t, { type Test } from 'tap';
import { answer, startApp } from './support/app-server.ts';
import { deleteQueuesAtEnd, uniqueTopic } from './support/in-process.ts';
import { KIND, type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './support/otlp-receiver.ts';
import { uniqueAppId } from './support/push.ts';
import { startSidecar } from './support/sidecar-process.ts';
import { until } from './support/wait.ts';

const hex = (bytes: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('hex');

const otelEnv = (receiver: OtlpReceiver, protocol = 'http/json') => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
  OTEL_BSP_SCHEDULE_DELAY: '100',
});

/** Publishes "x" to `topic` as part of a new trace (the app's span sampled); the trace id. */
async function publishTraced(api: string, topic: string): Promise<string> {
  const traceId = hex(16);
  const response = await fetch(`${api}/v1/publish/${topic}`, {
    method: 'POST',
    headers: { traceparent: `00-${traceId}-${hex(8)}-01` },
    body: 'x',
  });
  if (response.status !== 202) throw new Error(`publish answered ${response.status}: ${await response.text()}`);
  return traceId;
}

/**
 * A publishing sidecar and a consuming one (push to a test app), both exporting to
 * `receiver`; the consuming sidecar has an outbound target `payments` (`upstream`).
 */
async function workflow(t: Test, receiver: OtlpReceiver, { protocol = 'http/json', messageParent = 'child' } = {}) {
  const app = await startApp(t);
  const upstream = await startApp(t);
  const topic = uniqueTopic('trace');
  const consumerId = uniqueAppId('orders');
  deleteQueuesAtEnd(t, `${consumerId}:${topic}`);
  const consumer = await startSidecar(
    t,
    {
      appId: consumerId,
      app: { port: app.port },
      tracing: { messageParent },
      subscriptions: [{ name: 'placed', topic, route: '/events', retry: { maxAttempts: 1 } }],
      targets: [{ name: 'payments', baseUrl: `http://127.0.0.1:${upstream.port}/api` }],
    },
    otelEnv(receiver, protocol),
  );
  const producer = await startSidecar(t, { appId: uniqueAppId('shop') }, otelEnv(receiver, protocol));
  await until('the consumer to consume', async () => (await fetch(`${consumer.ops}/readyz`)).status === 200);
  await until('the producer to be ready', async () => (await fetch(`${producer.ops}/readyz`)).status === 200);
  return { app, upstream, topic, consumer, producer, consumerId };
}

t.test(
  'publish -> message hop -> push -> outbound call is one trace with the right parents and attributes',
  async (t) => {
    const receiver = await startOtlpReceiver(t);
    const { app, upstream, topic, consumer, producer, consumerId } = await workflow(t, receiver);
    // The consuming app calls the payments API through its sidecar, passing on the trace it was given.
    app.handle((request, response) => {
      fetch(`${consumer.api}/v1/outbound/payments/charges?order=1`, {
        headers: { traceparent: String(request.headers.traceparent) },
      }).then(
        (answer) => response.writeHead(answer.status === 200 ? 200 : 500).end(),
        () => response.writeHead(500).end(),
      );
    });
    const traceId = hex(16);
    const appSpanId = hex(8);
    const published = await fetch(`${producer.api}/v1/publish/${topic}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${appSpanId}-01` },
      body: JSON.stringify({ order: 1 }),
    });
    t.equal(published.status, 202);
    const { id } = (await published.json()) as { id: string };

    const push = await until('the push to reach the app', () => app.received.find((r) => r.path === '/events'));
    const pushed = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(push.headers.traceparent));
    t.ok(pushed, 'the app gets a sampled traceparent');
    t.equal(pushed?.[1], traceId, "the app's push continues the publisher's trace");

    const spans = await until('all six spans at the receiver', () => {
      const inTrace = receiver.spans.filter((span) => span.traceId === traceId);
      return inTrace.length >= 6 ? inTrace : undefined;
    });
    const find = (name: string, kind: number) => {
      const span = spans.find((s) => s.name === name && s.kind === kind);
      t.ok(span, `a ${name} span of kind ${kind}`);
      return span as ReceivedSpan;
    };
    const server = find('POST /v1/publish/:topic', KIND.server);
    const send = find(`send ${topic}`, KIND.producer);
    const process = find(`process ${topic}`, KIND.consumer);
    const call = find('POST', KIND.client);
    const outboundServer = find('GET /v1/outbound/:target/*', KIND.server);
    const attempt = find('GET', KIND.client);

    t.equal(server.parentSpanId, appSpanId, "the server span continues the app's traceparent");
    t.equal(send.parentSpanId, server.spanId, 'send is a child of the publish request');
    t.equal(process.parentSpanId, send.spanId, 'process is a child of send, across the broker');
    t.equal(call.parentSpanId, process.spanId, 'the push is a child of process');
    t.equal(pushed?.[2], call.spanId, "the app's traceparent names the push span as its parent");
    t.equal(outboundServer.parentSpanId, call.spanId, "the app's outbound call continues the push's trace");
    t.equal(attempt.parentSpanId, outboundServer.spanId, 'the attempt is a child of the outbound call');
    const charged = upstream.received.find((r) => r.path === '/api/charges?order=1');
    t.equal(
      charged?.headers.traceparent?.toString().split('-')[2],
      attempt.spanId,
      'the upstream gets the attempt span',
    );
    t.match(attempt.attributes, { 'http.request.method': 'GET', 'http.response.status_code': 200 });
    t.equal(attempt.service, consumerId);

    t.match(server.attributes, { 'http.request.method': 'POST', 'http.route': '/v1/publish/:topic' });
    t.equal(server.attributes['http.response.status_code'], 202);
    t.match(send.attributes, {
      'messaging.system': 'rabbitmq',
      'messaging.destination.name': topic,
      'messaging.operation.type': 'send',
      'messaging.message.id': id,
      'outrigger.routed': true,
    });
    t.match(process.attributes, {
      'messaging.system': 'rabbitmq',
      'messaging.destination.name': topic,
      'messaging.operation.type': 'process',
      'messaging.destination.subscription.name': 'placed',
      'messaging.consumer.group.name': consumerId,
      'messaging.message.id': id,
      'outrigger.attempt': 1,
      'outrigger.outcome': 'acked',
    });
    t.match(call.attributes, {
      'http.request.method': 'POST',
      'server.address': '127.0.0.1',
      'http.response.status_code': 200,
    });
    t.equal(
      server.service,
      producer.logs.find((l) => l.msg === 'sidecar started')?.appId,
      'service.name is the app id',
    );
    t.equal(process.service, consumerId);

    // A delivery the app rejects: the warning about it carries the trace it belongs to.
    app.handle(answer(422));
    const rejectedTrace = hex(16);
    await fetch(`${producer.api}/v1/publish/${topic}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${rejectedTrace}-${hex(8)}-01` },
      body: '{}',
    });
    const line = await until('the warning about the rejected delivery', () =>
      consumer.logs.find((l) => l.msg === 'delivery failed'),
    );
    t.equal(line.trace_id, rejectedTrace, 'the log line carries the trace id');
    const failed = await until('the failed process span', () =>
      receiver.spans.find((s) => s.traceId === rejectedTrace && s.kind === KIND.consumer),
    );
    t.equal(line.span_id, failed.spanId, 'and the id of the process span');
    t.equal(failed.attributes['outrigger.outcome'], 'dead_lettered');
    t.equal(failed.status.code, 2, 'the span is marked as an error');
  },
);

t.test('each retry is another process span under the same send, in the same trace', async (t) => {
  const receiver = await startOtlpReceiver(t);
  const app = await startApp(t);
  let calls = 0;
  app.handle((_request, response) => {
    calls += 1;
    response.writeHead(calls === 1 ? 503 : 200).end();
  });
  const topic = uniqueTopic('trace-retry');
  const appId = uniqueAppId('retrying');
  deleteQueuesAtEnd(t, `${appId}:${topic}`);
  const sidecar = await startSidecar(
    t,
    {
      appId,
      app: { port: app.port },
      subscriptions: [{ name: 'r', topic, route: '/events', retry: { maxAttempts: 3, initial: '1s', jitter: 0 } }],
    },
    otelEnv(receiver),
  );
  await until('ready', async () => (await fetch(`${sidecar.ops}/readyz`)).status === 200);
  const traceId = await publishTraced(sidecar.api, topic);
  const attempts = await until('two process spans', () => {
    const found = receiver.spans.filter((s) => s.traceId === traceId && s.kind === KIND.consumer);
    return found.length >= 2 ? found : undefined;
  });
  const send = receiver.spans.find((s) => s.traceId === traceId && s.kind === KIND.producer);
  attempts.sort((a, b) => Number(a.attributes['outrigger.attempt']) - Number(b.attributes['outrigger.attempt']));
  t.same(
    attempts.map((s) => [s.attributes['outrigger.attempt'], s.attributes['outrigger.outcome'], s.parentSpanId]),
    [
      [1, 'retried', send?.spanId],
      [2, 'acked', send?.spanId],
    ],
  );
});

t.test(
  'an outbound call retried: one CLIENT span per attempt, resend_count on the retry, the retry as an event',
  async (t) => {
    const receiver = await startOtlpReceiver(t);
    const upstream = await startApp(t);
    let calls = 0;
    upstream.handle((_request, response) => {
      calls += 1;
      response.writeHead(calls === 1 ? 503 : 200).end();
    });
    const sidecar = await startSidecar(
      t,
      {
        appId: uniqueAppId('calling'),
        targets: [
          {
            name: 'ledger',
            baseUrl: `http://127.0.0.1:${upstream.port}/v2`,
            retry: { initial: '10ms', jitter: 0 },
          },
        ],
      },
      otelEnv(receiver),
    );
    const traceId = hex(16);
    const answered = await fetch(`${sidecar.api}/v1/outbound/ledger/entries/7?full=1`, {
      headers: { traceparent: `00-${traceId}-${hex(8)}-01` },
    });
    t.equal(answered.status, 200);
    t.equal(answered.headers.get('outrigger-attempts'), '2');
    const spans = await until('the server span and two attempts', () => {
      const inTrace = receiver.spans.filter((s) => s.traceId === traceId);
      return inTrace.length >= 3 ? inTrace : undefined;
    });
    const server = spans.find((s) => s.kind === KIND.server);
    const attempts = spans.filter((s) => s.kind === KIND.client);
    t.equal(attempts.length, 2);
    const [first, retry] = [
      attempts.find((s) => s.attributes['http.request.resend_count'] === undefined),
      attempts.find((s) => s.attributes['http.request.resend_count'] === 1),
    ];
    const common = {
      'http.request.method': 'GET',
      'server.address': '127.0.0.1',
      'server.port': upstream.port,
      'url.full': `http://127.0.0.1:${upstream.port}/v2/entries/7`,
    };
    // t.has, not t.match: a string pattern in t.match matches any string that contains it.
    t.has(first?.attributes, { ...common, 'http.response.status_code': 503, 'error.type': '503' });
    t.equal(first?.status.code, 2, 'the 503 attempt is marked failed');
    t.has(retry?.attributes, { ...common, 'http.response.status_code': 200 });
    t.notOk(retry?.attributes['error.type']);
    t.ok(
      attempts.every((s) => s.parentSpanId === server?.spanId),
      'both attempts are children of the outbound call',
    );
    t.match(server?.events, [
      {
        name: 'outrigger.retry',
        attributes: { 'outrigger.target': 'ledger', 'http.request.resend_count': 1, 'outrigger.retry.reason': '5xx' },
      },
    ]);
    const path = upstream.received.map((r) => r.path);
    t.same(path, ['/v2/entries/7?full=1', '/v2/entries/7?full=1'], 'the query travels; it is not in url.full');
  },
);

t.test('with messageParent: link, each delivery starts a trace linked to the producer', async (t) => {
  const receiver = await startOtlpReceiver(t);
  const { topic, producer } = await workflow(t, receiver, { messageParent: 'link' });
  const traceId = await publishTraced(producer.api, topic);
  const send = await until('the send span', () =>
    receiver.spans.find((s) => s.traceId === traceId && s.kind === KIND.producer),
  );
  const process = await until('the process span', () =>
    receiver.spans.find((s) => s.kind === KIND.consumer && s.links.some((l) => l.spanId === send.spanId)),
  );
  t.not(process.traceId, traceId, 'a new trace');
  t.equal(process.parentSpanId, '', 'with no parent');
  t.same(process.links, [{ traceId, spanId: send.spanId }], 'linked to the send span');
});

t.test('a pulled message carries the trace of its lease, which ends with the ack', async (t) => {
  const receiver = await startOtlpReceiver(t);
  const topic = uniqueTopic('trace-pull');
  const appId = uniqueAppId('puller');
  deleteQueuesAtEnd(t, `${appId}:${topic}`);
  const sidecar = await startSidecar(
    t,
    { appId, subscriptions: [{ name: 'jobs', topic, mode: 'pull' }] },
    otelEnv(receiver),
  );
  await until('ready', async () => (await fetch(`${sidecar.ops}/readyz`)).status === 200);
  const traceId = await publishTraced(sidecar.api, topic);
  const pulled = (await (
    await fetch(`${sidecar.api}/v1/subscriptions/jobs/pull`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ max: 1, wait: '5s' }),
    })
  ).json()) as { messages: { ackId: string; headers: Record<string, string> }[] };
  const message = pulled.messages[0];
  const parent = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(message?.headers.traceparent ?? '');
  t.equal(parent?.[1], traceId, 'the pulled message continues the trace');
  await fetch(`${sidecar.api}/v1/subscriptions/jobs/ack`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ackIds: [message?.ackId] }),
  });
  const process = await until('the process span', () =>
    receiver.spans.find((s) => s.traceId === traceId && s.kind === KIND.consumer),
  );
  const send = receiver.spans.find((s) => s.traceId === traceId && s.kind === KIND.producer);
  t.equal(process.parentSpanId, send?.spanId, 'a child of send');
  t.equal(parent?.[2], process.spanId, "the app's work is a child of the lease's span");
  t.equal(process.attributes['outrigger.outcome'], 'acked');
});

t.test('OTLP protobuf (the default protocol) reaches the receiver', async (t) => {
  const receiver = await startOtlpReceiver(t);
  const { topic, producer, app } = await workflow(t, receiver, { protocol: 'http/protobuf' });
  const traceId = await publishTraced(producer.api, topic);
  await until('the push', () => app.received.length > 0);
  // Without a protobuf decoder at hand: the trace id's 16 bytes and the span names are in the payloads.
  const payloads = await until('protobuf exports with the trace', () => {
    const all = Buffer.concat(receiver.protobuf);
    return all.includes(Buffer.from(traceId, 'hex')) && all.includes(`process ${topic}`) ? all : undefined;
  });
  t.ok(payloads.includes(`send ${topic}`), 'the send span was exported');
  t.equal(receiver.spans.length, 0, 'nothing was sent as JSON');
});

t.test(
  'without OTEL_* settings nothing is exported and the app gets the publisher’s traceparent as sent',
  async (t) => {
    const app = await startApp(t);
    const topic = uniqueTopic('notrace');
    const appId = uniqueAppId('plain');
    deleteQueuesAtEnd(t, `${appId}:${topic}`);
    const sidecar = await startSidecar(t, {
      appId,
      app: { port: app.port },
      subscriptions: [{ name: 'all', topic, route: '/events' }],
    });
    await until('ready', async () => (await fetch(`${sidecar.ops}/readyz`)).status === 200);
    const traceparent = `00-${hex(16)}-${hex(8)}-01`;
    await fetch(`${sidecar.api}/v1/publish/${topic}`, { method: 'POST', headers: { traceparent }, body: 'x' });
    const push = await until('the push', () => app.received[0]);
    t.equal(push.headers.traceparent, traceparent);
    t.notOk(
      sidecar.logs.some((l) => l.msg === 'tracing on'),
      'tracing stays off',
    );
  },
);
