// What a span costs the OpenTelemetry JS SDK on this machine, with nothing
// else running in the process: the sidecar's own SDK setup
// (sidecar/src/telemetry/tracing-sdk.ts: batch processor, OTLP protobuf),
// spans shaped like a sidecar call's (a SERVER span continuing nothing, a
// CLIENT child, the same attributes), each started, ended, batched,
// serialised and sent to the receiver. The floor under tracing's cost: a
// traced call makes two such spans.
//
//   node bench/span-cost.ts <OTLP endpoint> [pairs]   prints {"cpuUsPerSpan": n}
import { context, SpanKind, trace } from '@opentelemetry/api';
import { createLogger } from '../sidecar/src/telemetry/logger.ts';
import { registerSdk } from '../sidecar/src/telemetry/tracing-sdk.ts';

const [endpoint, pairsArg = '20000'] = process.argv.slice(2);
if (endpoint === undefined) throw new Error('usage: node bench/span-cost.ts <OTLP endpoint> [pairs]');
const env = { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_SAMPLER: 'always_on' };
Object.assign(process.env, env); // the exporter reads its endpoint from the environment
const sdk = registerSdk({ serviceName: 'span-cost', version: '0', logger: createLogger('silent') }, env);
const tracer = trace.getTracer('span-cost');

/** One call's spans; a turn of the event loop every 64 calls, as requests would give the exporter. */
async function spans(pairs: number): Promise<void> {
  for (let i = 0; i < pairs; i++) {
    const server = tracer.startSpan('GET /v1/outbound/:target/*', {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': 'GET',
        'url.path': '/v1/outbound/orders/orders/order-1',
        'http.route': '/v1/outbound/:target/*',
      },
    });
    const client = tracer.startSpan(
      'GET',
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': 'GET',
          'server.address': '127.0.0.1',
          'server.port': 8080,
          'url.full': 'http://127.0.0.1:8080/api/orders/order-1',
        },
      },
      trace.setSpan(context.active(), server),
    );
    client.setAttribute('http.response.status_code', 200);
    client.end();
    server.setAttribute('http.response.status_code', 200);
    server.end();
    if (i % 64 === 63) await new Promise((resolve) => setImmediate(resolve));
  }
}

await spans(5_000); // warm
const before = process.cpuUsage();
const pairs = Number(pairsArg);
await spans(pairs);
await sdk.shutdown(); // the last batch exported, inside the measurement
const used = process.cpuUsage(before);
console.log(JSON.stringify({ cpuUsPerSpan: (used.user + used.system) / (pairs * 2) }));
