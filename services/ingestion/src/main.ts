// Ingestion service: receives sensor readings from its Outrigger sidecar
// (push delivery: one POST per message) and keeps a running average of the
// calibrated temperatures. Calibrations arrive the same way: the calibration
// service commits them with an outbox row, and its sidecar relays that row.
// For each reading it processes, it asks an external weather API for the
// ambient temperature through its sidecar's outbound proxy (retries, circuit
// breaker, timeouts), in the reading's trace.
// Node's standard library only: the sidecar speaks plain HTTP.
import { createServer, type IncomingMessage } from 'node:http';

const port = Number(process.env.PORT ?? 8081);
/** Its sidecar's app API: `outrigger run` (or the injector) sets OUTRIGGER_URL. */
const sidecar = process.env.OUTRIGGER_URL ?? 'http://127.0.0.1:3601';
let count = 0;
let seen = 0;
/** Every so often the first attempt fails, to show retries that wait in the broker. */
const HICCUP_EVERY = Number(process.env.HICCUP_EVERY ?? 4);
/** The sidecar's outbound target for the weather API; empty: no weather calls (a sandbox without the API). */
const WEATHER_TARGET = process.env.WEATHER_TARGET ?? 'weather';
let sum = 0;
/** Each sensor's latest calibration offset, in C. */
const offsets = new Map<string, number>();

async function body(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The ambient temperature at the sensor, from the weather API (the `weather`
 * target in outrigger.yaml) through the sidecar, as a log line. The push's
 * traceparent and tracestate go along, so the call joins the reading's trace.
 */
async function weather(sensor: string, push: IncomingMessage): Promise<string | undefined> {
  if (WEATHER_TARGET === '') return undefined;
  // The sidecar gives the whole call, retries included, 2 s at most: a hung API never holds a delivery.
  const headers: Record<string, string> = { 'outrigger-timeout': '2s' };
  for (const name of ['traceparent', 'tracestate']) {
    const value = push.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  try {
    const response = await fetch(
      `${sidecar}/v1/outbound/${WEATHER_TARGET}/v1/conditions/${encodeURIComponent(sensor)}`,
      {
        headers,
        signal: AbortSignal.timeout(3_000), // in case the sidecar itself does not answer
      },
    );
    if (!response.ok) {
      let why = String(response.status);
      if (response.headers.get('content-type')?.startsWith('application/problem+json')) {
        const problem = (await response.json()) as { code?: string; detail?: string };
        why += ` ${problem.code} ${problem.detail}`;
      } else {
        await response.body?.cancel();
      }
      return `weather unavailable for ${sensor}: ${why}`;
    }
    const { ambientC } = (await response.json()) as { ambientC: number };
    const attempts = response.headers.get('outrigger-attempts') ?? '1';
    return `weather at ${sensor}: ambient ${ambientC.toFixed(1)} C (${attempts} attempt${attempts === '1' ? '' : 's'})`;
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return `weather unavailable for ${sensor}: ${cause ?? (error as Error).message}`;
  }
}

const server = createServer(async (request, response) => {
  if (request.method === 'GET' && request.url === '/healthz') {
    response.writeHead(200).end('ok');
    return;
  }
  if (request.method === 'POST' && request.url === '/events/readings') {
    const reading = JSON.parse(await body(request)) as { id: string; sensor: string; celsius: number };
    const attempt = request.headers['outrigger-attempt'];
    seen += 1;
    if (seen % HICCUP_EVERY === 0 && attempt === '1') {
      // A transient failure: the sidecar parks the message in the broker and pushes it again after the back-off.
      console.log(`hiccup on ${reading.id}: answering 503; the sidecar retries it`);
      response.writeHead(503).end('simulated hiccup');
      return;
    }
    // Best effort: whatever the weather call's outcome, the reading is processed and answered 2xx (a failed call
    // must not send the reading back to the broker for a retry; the sidecar already retried the call itself).
    const ambient = await weather(reading.sensor, request);
    if (ambient !== undefined) console.log(ambient);
    const offset = offsets.get(reading.sensor);
    const celsius = reading.celsius + (offset ?? 0);
    count += 1;
    sum += celsius;
    const calibrated = offset === undefined ? '' : ` (calibrated ${celsius.toFixed(2)} C)`;
    console.log(
      `received ${reading.id} (attempt ${attempt}): ${reading.celsius} C${calibrated}, average ${(sum / count).toFixed(2)} C`,
    );
    response.writeHead(204).end();
    return;
  }
  if (request.method === 'POST' && request.url === '/events/calibrations') {
    const calibration = JSON.parse(await body(request)) as { id: string; sensor: string; offsetC: number };
    offsets.set(calibration.sensor, calibration.offsetC);
    console.log(
      `applied ${calibration.id} to ${calibration.sensor} (offset ${calibration.offsetC} C, ` +
        `${request.headers['ce-type']} from ${request.headers['ce-source']})`,
    );
    response.writeHead(204).end();
    return;
  }
  response.writeHead(404).end();
});

server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    console.log(`stopping after ${count} readings`);
    server.close(() => process.exit(0));
  });
}
