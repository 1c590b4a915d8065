// Outbound calls, policies: what is retried and how, the retry budget, the
// per-attempt timeout, the circuit breaker and the bulkhead, against a real
// upstream on loopback through an in-process sidecar.
import { request } from 'node:http';
import t, { type Test } from 'tap';
import { TargetSchema } from '../src/config/target.ts';
import { createLogger } from '../src/telemetry/logger.ts';
import { answeredMidBody, RawConnection } from './support/raw-connection.ts';
import {
  type Answer,
  circuitOf,
  reply,
  sidecarWith,
  startHoldingUpstream,
  startUpstream,
  type UpstreamHandler,
} from './support/upstream.ts';
import { until } from './support/wait.ts';

const isProblem = (t: Test, answer: Answer, code: string, status: number) => {
  t.equal(answer.status, status, `${code} is ${status}`);
  t.match(answer.headers['content-type'], /^application\/problem\+json/);
  t.match(answer.json(), { code, status });
};

/** Answers with each handler in turn, the last one for every later request. */
const sequence = (...handlers: ReturnType<typeof reply>[]) => {
  let next = 0;
  return (...args: Parameters<ReturnType<typeof reply>>) => {
    const handler = handlers[Math.min(next++, handlers.length - 1)] as ReturnType<typeof reply>;
    handler(...args);
  };
};

const gaps = (hits: { at: number }[]) => hits.slice(1).map((hit, i) => hit.at - (hits[i] as { at: number }).at);

t.test('GET is retried on a retryable status, with exponential back-off', async (t) => {
  const upstream = await startUpstream(t, sequence(reply(503), reply(503), reply(200, {}, 'finally')));
  const { call } = await sidecarWith(t, [
    { name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}`, retry: { initial: '100ms', max: '1s', jitter: 0 } },
  ]);
  const answer = await call('/v1/outbound/api/things');
  t.equal(answer.status, 200);
  t.equal(answer.text, 'finally');
  t.equal(answer.headers['outrigger-attempts'], '3');
  t.equal(upstream.hits.length, 3);
  const [first, second] = gaps(upstream.hits) as [number, number];
  t.ok(first >= 95 && first < 600, `first back-off ~100 ms (${first})`);
  t.ok(second >= 195 && second < 900, `second back-off ~200 ms (${second})`);
});

t.test('full jitter keeps each back-off between 0 and the exponential value', async (t) => {
  const upstream = await startUpstream(t, reply(503));
  const { call } = await sidecarWith(t, [
    {
      name: 'api',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      retry: { maxAttempts: 4, initial: '150ms', max: '300ms', jitter: 'full' },
      circuitBreaker: { consecutiveFailures: 100 },
    },
  ]);
  const answer = await call('/v1/outbound/api/x');
  t.equal(answer.status, 503, 'the last upstream answer');
  t.equal(answer.headers['outrigger-attempts'], '4');
  const [a, b, c] = gaps(upstream.hits) as [number, number, number];
  t.ok(a < 150 + 100 && b < 300 + 100 && c < 300 + 100, `back-offs ${a}, ${b}, ${c} under 150, 300, 300 ms (+ slack)`);
});

t.test('POST is not retried; POST with idempotency-key is', async (t) => {
  const upstream = await startUpstream(t, reply(503));
  const { call } = await sidecarWith(t, [
    {
      name: 'api',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      retry: { initial: '10ms' },
      circuitBreaker: { consecutiveFailures: 100 },
    },
  ]);
  const plain = await call('/v1/outbound/api/orders', { method: 'POST', body: '{"a":1}' });
  t.equal(plain.status, 503);
  t.equal(plain.headers['outrigger-attempts'], '1');
  t.equal(upstream.hits.length, 1);

  const keyed = await call('/v1/outbound/api/orders', {
    method: 'POST',
    body: '{"a":1}',
    headers: { 'idempotency-key': 'order-1', 'content-type': 'application/json' },
  });
  t.equal(keyed.status, 503);
  t.equal(keyed.headers['outrigger-attempts'], '3');
  t.equal(upstream.hits.length, 4);
  t.equal(upstream.hits[3]?.headers['idempotency-key'], 'order-1', 'the key goes to the target');

  const put = await call('/v1/outbound/api/orders/1', { method: 'PUT', body: 'x' });
  t.equal(put.headers['outrigger-attempts'], '3', 'PUT is idempotent');
});

t.test('a body over 64 KiB streams through once and is not retried', async (t) => {
  const received: number[] = [];
  const upstream = await startUpstream(t, (request, response) => {
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
    });
    request.on('end', () => {
      received.push(size);
      response.writeHead(503).end();
    });
  });
  const { call } = await sidecarWith(t, [
    { name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}`, retry: { initial: '10ms' } },
  ]);
  const big = Buffer.alloc(64 * 1024 + 1, 'a');
  const answer = await call('/v1/outbound/api/upload', { method: 'PUT', body: big });
  t.equal(answer.status, 503);
  t.equal(answer.headers['outrigger-attempts'], '1');
  t.same(received, [big.length], 'sent once, whole');

  const small = Buffer.alloc(64 * 1024, 'b');
  const retried = await call('/v1/outbound/api/upload', { method: 'PUT', body: small });
  t.equal(retried.headers['outrigger-attempts'], '3', 'exactly 64 KiB is replayable');
  t.same(received.slice(1), [small.length, small.length, small.length], 'the same body each time');
});

t.test(
  "a target that answers a large upload without reading it: its answer goes back, the app's connection is kept",
  async (t) => {
    const upstream = await startUpstream(t, (request, response) => {
      if (request.url === '/ok') return reply(200, {}, 'fine')(request, response, undefined as never);
      // Answers at once, then closes: the rest of the upload is never read.
      response.writeHead(413, { 'content-type': 'text/plain', connection: 'close' }).end('too large');
    });
    const { api } = await sidecarWith(t, [{ name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}` }]);
    const half = Buffer.alloc(256 * 1024, 'u');
    const { answer, next } = await answeredMidBody(t, api, {
      method: 'PUT',
      path: '/v1/outbound/api/upload',
      headers: { 'content-length': String(2 * half.length) },
      first: half,
      rest: half,
      next: '/v1/outbound/api/ok',
    });
    t.equal(answer.status, 413, "the target's answer");
    t.equal(answer.text, 'too large');
    t.equal(next.status, 200, 'the rest of the upload was dropped: the next request on the same connection is served');
    t.equal(next.text, 'fine');
  },
);

t.test('a large upload the circuit refuses before its first attempt: CIRCUIT_OPEN, its connection kept', async (t) => {
  const releases: (() => void)[] = [];
  const upstream = await startUpstream(t, (request, response) => {
    request.resume();
    if (request.url === '/fail') releases.push(() => response.writeHead(503).end('down'));
    else request.on('end', () => response.end('fine'));
  });
  const upload = Buffer.alloc(1024 * 1024, 'u');
  const framings = {
    'content-length': [`content-length: ${upload.length}`, upload],
    chunked: [
      'transfer-encoding: chunked',
      Buffer.concat([Buffer.from(`${upload.length.toString(16)}\r\n`), upload, Buffer.from('\r\n0\r\n\r\n')]),
    ],
  } as const;
  // One target per framing, each with one slot: the failing call holds it, the upload waits, the circuit opens.
  const { api, ops, call } = await sidecarWith(
    t,
    Object.keys(framings).map((name) => ({
      name,
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      retry: { maxAttempts: 1 },
      circuitBreaker: { consecutiveFailures: 1, halfOpenAfter: '1m' },
      bulkhead: { maxConcurrent: 1, maxQueue: 4 },
    })),
  );
  for (const [framing, [header, body]] of Object.entries(framings)) {
    const failing = call(`/v1/outbound/${framing}/fail`);
    await until('the failing call to hold the slot', () => releases.length === 1);
    const connection = new RawConnection(t, Number(new URL(api).port));
    connection.write(`PUT /v1/outbound/${framing}/upload HTTP/1.1\r\nhost: sidecar\r\n${header}\r\n\r\n`);
    connection.write(body);
    const queued = new RegExp(`\\noutrigger_outbound_queued\\{target="${framing}"\\} 1\\n`);
    await until('the upload to wait in the bulkhead queue', async () =>
      queued.test(await (await fetch(`${ops}/metrics`)).text()),
    );
    releases.shift()?.();
    t.equal((await failing).status, 503, `${framing}: the circuit opens`);
    const answer = await connection.answer();
    t.equal(answer.status, 503, `${framing}: the upload is refused`);
    t.match(answer.json(), { code: 'CIRCUIT_OPEN' });
    connection.write(`GET /v1/outbound/${framing}/ok HTTP/1.1\r\nhost: sidecar\r\n\r\n`);
    const next = await connection.answer();
    t.match(
      next.json(),
      { code: 'CIRCUIT_OPEN' },
      `${framing}: the rest of the upload dropped, the next request answered`,
    );
  }
  t.same(
    upstream.hits.map((hit) => hit.url),
    ['/fail', '/fail'],
    'no upload was sent',
  );
});

t.test(
  'an app that breaks off a large upload the circuit refused, while its answer waits: the sidecar lives on',
  async (t) => {
    const upstream = await startUpstream(t, (request, response) => {
      request.resume();
      if (request.url === '/hold') return; // never answered: the pipelined upload's answer waits behind it
      request.on('end', () => response.writeHead(request.url === '/fail' ? 503 : 200).end());
    });
    const baseUrl = `http://127.0.0.1:${upstream.port}`;
    const { api, call } = await sidecarWith(t, [
      { name: 'held', baseUrl },
      {
        name: 'api',
        baseUrl,
        retry: { maxAttempts: 1 },
        circuitBreaker: { consecutiveFailures: 1, halfOpenAfter: '1m' },
      },
    ]);
    const connection = new RawConnection(t, Number(new URL(api).port));
    connection.write('GET /v1/outbound/held/hold HTTP/1.1\r\nhost: sidecar\r\n\r\n');
    connection.write(
      'PUT /v1/outbound/api/up HTTP/1.1\r\nhost: sidecar\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n',
    );
    await until('the held call to reach the upstream', () => upstream.hits.length === 1);
    t.equal((await call('/v1/outbound/api/fail')).status, 503, 'the circuit opens');
    const chunk = Buffer.alloc(100 * 1024, 'u'); // past 64 KiB: the upload now streams, and the circuit refuses it
    connection.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]));
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Closed with the upload's answer still waiting behind the held call's: the request breaks off after its body
    // stream was closed (attempts()) or, were it not, with that stream unread (request-body.ts listens for its error).
    connection.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.equal(
      (await call('/v1/outbound/api/x')).status,
      503,
      'the sidecar still answers (an uncaught error would end it)',
    );
  },
);

t.test("the upstream's retry-after is honoured; one longer than retry.max ends the retries", async (t) => {
  const upstream = await startUpstream(t, sequence(reply(503, { 'retry-after': '1' }), reply(200)));
  const { call } = await sidecarWith(t, [
    { name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}`, retry: { initial: '10ms', max: '5s' } },
  ]);
  const answer = await call('/v1/outbound/api/x');
  t.equal(answer.status, 200);
  const [gap] = gaps(upstream.hits) as [number];
  t.ok(gap >= 950 && gap < 2_500, `waited the 1 s asked (${gap} ms)`);

  const date = new Date(Date.now() + 60_000).toUTCString();
  upstream.handle(reply(429, { 'retry-after': date }));
  const tooLong = await call('/v1/outbound/api/x');
  t.equal(tooLong.status, 429, "the upstream's answer goes back");
  t.equal(tooLong.headers['retry-after'], date, 'with its retry-after');
  t.equal(tooLong.headers['outrigger-attempts'], '1');
});

t.test('the retry budget caps retries at its ratio of calls under a failing upstream', async (t) => {
  const upstream = await startUpstream(t, reply(503));
  const { call, ops } = await sidecarWith(t, [
    {
      name: 'flaky',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      retry: { maxAttempts: 3, initial: '1ms', max: '2ms' },
      budget: { ratio: 0.2, minPerSecond: 0 },
      circuitBreaker: { consecutiveFailures: 1000 },
    },
  ]);
  const calls = 30;
  for (let i = 0; i < calls; i++) t.equal((await call('/v1/outbound/flaky/x')).status, 503);
  const retries = upstream.hits.length - calls;
  t.ok(retries <= 0.2 * calls, `retries (${retries}) <= 20% of ${calls} calls`);
  t.ok(retries >= 0.2 * calls - 1, `and the budget was used (${retries})`);
  const metrics = await (await fetch(`${ops}/metrics`)).text();
  t.match(metrics, /outrigger_outbound_retries_budget_exhausted_total\{target="flaky"\} [1-9]/);
});

t.test('a per-attempt timeout ends in UPSTREAM_TIMEOUT; "timeout" in retry.on retries it', async (t) => {
  const { upstream } = await startHoldingUpstream(t);
  const { call } = await sidecarWith(t, [
    { name: 'slow', baseUrl: `http://127.0.0.1:${upstream.port}`, timeout: '100ms', retry: { initial: '10ms' } },
    {
      name: 'slow-retried',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      timeout: '200ms',
      retry: { maxAttempts: 2, initial: '10ms', on: ['timeout'] },
    },
  ]);
  const started = Date.now();
  const answer = await call('/v1/outbound/slow/x');
  const took = Date.now() - started;
  isProblem(t, answer, 'UPSTREAM_TIMEOUT', 504);
  t.equal(answer.headers['outrigger-attempts'], '1', 'timeouts are not retried by default');
  // undici's own headers timeout runs on timers with a tick of about half a second: it answered 0.5-1 s late.
  t.ok(
    took >= 95 && took < 480,
    `answered at the 100 ms timeout, not at a tick of undici's, 0.5-1 s later (${took} ms)`,
  );
  t.match(answer.json().detail, /target "slow": no answer within 100 ms/);
  t.notMatch(answer.text, /127\.0\.0\.1/, 'no internal address');

  const retried = await call('/v1/outbound/slow-retried/x');
  isProblem(t, retried, 'UPSTREAM_TIMEOUT', 504);
  t.equal(retried.headers['outrigger-attempts'], '2');
  t.equal(upstream.hits.length, 3);
});

t.test('an upload slower than the timeout is not cut: the wait for the answer begins once it is sent', async (t) => {
  const upstream = await startUpstream(t, (request, response) => {
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
    });
    request.on('end', () => response.writeHead(200, { 'content-type': 'text/plain' }).end(`got ${size}`));
  });
  const { api } = await sidecarWith(t, [
    { name: 'files', baseUrl: `http://127.0.0.1:${upstream.port}`, timeout: '300ms', retry: { maxAttempts: 1 } },
  ]);
  const chunk = Buffer.alloc(32 * 1024, 1);
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const upload = request(`${api}/v1/outbound/files/upload`, { method: 'POST' }, (response) => {
      let body = '';
      response.on('data', (data: Buffer) => {
        body += data.toString();
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    }).on('error', reject);
    // 256 KiB (streamed to the target: over 64 KiB) in 8 pieces 100 ms apart: about 0.7 s, over twice the timeout.
    let sent = 0;
    const next = () => {
      if (sent === 8) return void upload.end();
      sent += 1;
      upload.write(chunk);
      setTimeout(next, 100);
    };
    next();
  });
  t.same(answer, { status: 200, body: `got ${8 * chunk.length}` });
});

t.test('the breaker opens after consecutive failures, lets one trial through, and closes', async (t) => {
  const upstream = await startUpstream(t, reply(500));
  const { call } = await sidecarWith(t, [
    {
      name: 'weak',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      retry: { maxAttempts: 1 },
      circuitBreaker: { consecutiveFailures: 3, halfOpenAfter: '1s' },
    },
  ]);
  const circuit = () => circuitOf(call);
  for (let i = 0; i < 3; i++)
    t.equal((await call('/v1/outbound/weak/x')).status, 500, 'the upstream 500 passes through');
  t.equal(await circuit(), 'open');
  const refused = await call('/v1/outbound/weak/x');
  isProblem(t, refused, 'CIRCUIT_OPEN', 503);
  t.equal(refused.headers['retry-after'], '1');
  t.equal(upstream.hits.length, 3, 'nothing sent while open');

  await new Promise((resolve) => setTimeout(resolve, 1_050));
  t.equal(await circuit(), 'half-open');
  t.equal((await call('/v1/outbound/weak/x')).status, 500, 'the trial fails');
  t.equal(await circuit(), 'open', 'and the breaker opens again');
  isProblem(t, await call('/v1/outbound/weak/x'), 'CIRCUIT_OPEN', 503);

  await new Promise((resolve) => setTimeout(resolve, 1_050));
  upstream.handle(reply(200));
  t.equal((await call('/v1/outbound/weak/x')).status, 200, 'the trial succeeds');
  t.equal(await circuit(), 'closed');
  t.equal((await call('/v1/outbound/weak/x')).status, 200);
});

t.test('the sampling breaker opens on a failure ratio over its window, not on failures in a row', async (t) => {
  let calls = 0;
  const upstream = await startUpstream(t, (...args) => (calls++ % 2 === 0 ? reply(200) : reply(500))(...args));
  const { call } = await sidecarWith(t, [
    {
      name: 'flaky',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      retry: { maxAttempts: 1 },
      // At least 1 attempt per second over 5 s: 5 attempts before it may open.
      circuitBreaker: { sampling: { failureRatio: 0.4, window: '5s', minimumRps: 1 }, halfOpenAfter: '1s' },
    },
  ]);
  const circuit = () => circuitOf(call);
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await call('/v1/outbound/flaky/x')).status);
  t.same(statuses, [200, 500, 200, 500], 'every other attempt fails: never two in a row');
  t.equal(await circuit(), 'closed', 'half of them failed, but 4 attempts are too few to judge');
  t.equal((await call('/v1/outbound/flaky/x')).status, 200);
  t.equal(await circuit(), 'closed', 'a success does not open it');
  t.equal((await call('/v1/outbound/flaky/x')).status, 500);
  t.equal(await circuit(), 'open', '3 failures of 6 attempts is over 40%');
  const refused = await call('/v1/outbound/flaky/x');
  isProblem(t, refused, 'CIRCUIT_OPEN', 503);
  t.match(refused.json().detail, 'failed more than 40% of its attempts over 5 s');
  t.equal(upstream.hits.length, 6, 'nothing sent while open');

  await new Promise((resolve) => setTimeout(resolve, 1_050));
  upstream.handle(reply(200));
  t.equal((await call('/v1/outbound/flaky/x')).status, 200, 'the trial succeeds');
  t.equal(await circuit(), 'closed');
});

t.test('the sampling breaker forgets failures older than its window, however quiet the target was', async (t) => {
  const upstream = await startUpstream(t, reply(500));
  const { call } = await sidecarWith(t, [
    {
      name: 'flaky',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      retry: { maxAttempts: 1 },
      // At least 2 attempts per second over 2 s: 4 attempts before it may open.
      circuitBreaker: { sampling: { failureRatio: 0.5, window: '2s', minimumRps: 2 } },
    },
  ]);
  const circuit = () => circuitOf(call);
  for (let i = 0; i < 3; i++) t.equal((await call('/v1/outbound/flaky/x')).status, 500);
  t.equal(await circuit(), 'closed', '3 attempts are too few to judge');
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  t.equal((await call('/v1/outbound/flaky/x')).status, 500);
  t.equal(await circuit(), 'closed', 'one attempt in the window: the 3 before it have left it');
});

t.test('a breaker that opens mid-call ends its retries with the last upstream answer', async (t) => {
  const upstream = await startUpstream(t, reply(503));
  const { call } = await sidecarWith(t, [
    {
      name: 'weak',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      retry: { maxAttempts: 5, initial: '1ms' },
      circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: '10s' },
    },
  ]);
  const answer = await call('/v1/outbound/weak/x');
  t.equal(answer.status, 503);
  t.equal(answer.text, 'upstream says 503');
  t.equal(answer.headers['outrigger-attempts'], '2');
  t.equal(upstream.hits.length, 2);
});

/** A target whose upstream answers 500, except to /hold, held until the test answers it; and a call whose app goes away once it has reached the upstream. */
async function breakerWithHeldCalls(t: Test) {
  const { upstream, held } = await startHoldingUpstream(t, reply(500));
  const { api, call } = await sidecarWith(t, [
    {
      name: 'weak',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      retry: { maxAttempts: 1 },
      circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: '500ms' },
    },
  ]);
  const circuit = () => circuitOf(call);
  const abandoned = async () => {
    const leaving = request(`${api}/v1/outbound/weak/hold`);
    leaving.on('error', () => {});
    leaving.end();
    const before = held.length;
    await until('the call reaches the upstream', () => held.length > before);
    leaving.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
  };
  return { call, circuit, abandoned, held };
}

t.test('a call whose app hangs up does not break a run of failures', async (t) => {
  const { call, circuit, abandoned } = await breakerWithHeldCalls(t);
  t.equal((await call('/v1/outbound/weak/x')).status, 500);
  await abandoned();
  t.equal(await circuit(), 'closed', 'the abandoned call is not counted as a failure either');
  t.equal((await call('/v1/outbound/weak/x')).status, 500);
  t.equal(await circuit(), 'open', 'two failures with an abandoned call between them are two in a row');
});

t.test("a trial whose app hangs up is seen through: the target's answer decides the circuit", async (t) => {
  const { call, circuit, abandoned, held } = await breakerWithHeldCalls(t);
  for (let i = 0; i < 2; i++) t.equal((await call('/v1/outbound/weak/x')).status, 500);
  t.equal(await circuit(), 'open');
  await new Promise((resolve) => setTimeout(resolve, 550));
  await abandoned(); // the trial
  t.equal(await circuit(), 'half-open', 'the app leaving its trial does not close the circuit');
  isProblem(t, await call('/v1/outbound/weak/x'), 'CIRCUIT_OPEN', 503);
  t.equal(held.length, 1, 'and no second trial is sent');
  held.shift()?.writeHead(500).end();
  await until('the trial to end', async () => (await circuit()) !== 'half-open');
  t.equal(await circuit(), 'open', "the trial's 500 opens the circuit again");
});

t.test('the bulkhead queues up to maxQueue and refuses the rest with BULKHEAD_FULL', async (t) => {
  const { upstream, held } = await startHoldingUpstream(t);
  const { call, ops } = await sidecarWith(t, [
    { name: 'narrow', baseUrl: `http://127.0.0.1:${upstream.port}`, bulkhead: { maxConcurrent: 1, maxQueue: 1 } },
  ]);
  const first = call('/v1/outbound/narrow/1');
  const second = call('/v1/outbound/narrow/2');
  await new Promise((resolve) => setTimeout(resolve, 100));
  const third = await call('/v1/outbound/narrow/3');
  isProblem(t, third, 'BULKHEAD_FULL', 429);
  t.equal(third.headers['retry-after'], '1');
  t.equal(third.headers['outrigger-attempts'], '0', 'nothing was sent');
  t.equal(upstream.hits.length, 1, 'one in flight, one queued');
  const metrics = await (await fetch(`${ops}/metrics`)).text();
  t.match(metrics, /outrigger_outbound_in_flight\{target="narrow"\} 1/);
  t.match(metrics, /outrigger_outbound_rejected_total\{target="narrow",reason="bulkhead"\} 1/);
  held.shift()?.end('one');
  t.equal((await first).text, 'one');
  await new Promise((resolve) => setTimeout(resolve, 50));
  held.shift()?.end('two');
  t.equal((await second).text, 'two');
  t.equal(upstream.hits.length, 2);
});

t.test(
  'an app that goes away while its call waits or uploads is counted as aborted, not logged as a failure',
  async (t) => {
    const { upstream, held } = await startHoldingUpstream(t);
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
    const target = { name: 'narrow', baseUrl: `http://127.0.0.1:${upstream.port}`, bulkhead: { maxConcurrent: 2 } };
    const { api, ops, call } = await sidecarWith(t, [target], {}, { logger });
    const first = call('/v1/outbound/narrow/1');
    await until('the first call reaches the upstream', () => upstream.hits.length === 1);
    // The second place: an upload that stops half way.
    const uploading = request(`${api}/v1/outbound/narrow/3`, { method: 'PUT', headers: { 'content-length': '1000' } });
    uploading.on('error', () => {});
    uploading.write('x'.repeat(10));
    await until('the upload holds the second place', async () =>
      /outrigger_outbound_in_flight\{target="narrow"\} 2/.test(await (await fetch(`${ops}/metrics`)).text()),
    );
    // Queued behind both.
    const queued = request(`${api}/v1/outbound/narrow/2`);
    queued.on('error', () => {});
    queued.end();
    await new Promise((resolve) => setTimeout(resolve, 100));
    queued.destroy();
    uploading.destroy();

    const metrics = async () => (await fetch(`${ops}/metrics`)).text();
    await until('both counted as aborted', async () => (await metrics()).match(/status="aborted"\} 1/g)?.length === 2);
    held.shift()?.end('one');
    t.equal((await first).text, 'one');
    const after = call('/v1/outbound/narrow/4');
    await until('the next call reaches the upstream', () => upstream.hits.length === 2);
    held.shift()?.end('four');
    t.equal((await after).text, 'four', 'the abandoned calls freed their places: the next one went through');
    t.same(
      upstream.hits.map((hit) => hit.url),
      ['/1', '/4'],
      'neither abandoned call was sent',
    );
    const text = await metrics();
    t.match(text, /outrigger_outbound_requests_total\{target="narrow",method="GET",status="aborted"\} 1/);
    t.match(text, /outrigger_outbound_requests_total\{target="narrow",method="PUT",status="aborted"\} 1/);
    for (const method of ['GET', 'PUT']) {
      const count = `outrigger_api_request_duration_seconds_count{route="/v1/outbound/:target/*",method="${method}",status="499"} 1`;
      t.ok(text.includes(count), `the API metric records the abandoned ${method} as 499`);
    }
    t.notMatch(text, /outrigger_outbound_requests_total\{[^}]*status="(INTERNAL|UPSTREAM_UNREACHABLE)"/);
    t.match(text, /outrigger_outbound_in_flight\{target="narrow"\} 0/);
    t.same(
      lines.filter((line) => /"level":"(error|warn)"/.test(line)),
      [],
      'nothing logged as an error',
    );
  },
);

t.test(
  'replaced, then removed, while a call is in flight: its series go when that call ends, not before',
  async (t) => {
    const { upstream, held } = await startHoldingUpstream(t);
    const target = {
      name: 'moving',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      retry: { maxAttempts: 1 },
      circuitBreaker: { consecutiveFailures: 1 },
    };
    const { call, ops, sidecar } = await sidecarWith(t, [target]);
    const metrics = async () => (await fetch(`${ops}/metrics`)).text();
    const slow = call('/v1/outbound/moving/slow');
    await until('the first call reaches the upstream', () => held.length === 1);
    const failing = call('/v1/outbound/moving/fail');
    await until('the second call reaches the upstream', () => held.length === 2);
    sidecar.outbound.apply([{ target: TargetSchema.parse({ ...target, timeout: '5s' }), field: 'moving' }]);
    t.match(
      await metrics(),
      /outrigger_outbound_in_flight\{target="moving"\} 2/,
      "replaced: the old client's calls still count under the target",
    );
    held.pop()?.writeHead(500).end(); // opens the old client's circuit, after the replacement
    t.equal((await failing).status, 500);
    t.match(
      await metrics(),
      /outrigger_outbound_circuit_state\{target="moving"\} 0/,
      "the gauge is the new client's circuit, closed; the old one's opening does not overwrite it",
    );
    sidecar.outbound.apply([]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const during = await metrics();
    t.match(during, /outrigger_outbound_in_flight\{target="moving"\} 1/, 'the old call still counts');
    t.notMatch(
      during,
      /outrigger_outbound_circuit_state\{target="moving"\}/,
      "a retired client's circuit (open) is not reported",
    );
    held.shift()?.end('done');
    t.equal((await slow).text, 'done');
    // The retired client closes its pool after its last call, then leaves the gauge.
    const after = await until('the retired client to go', async () => {
      const text = await metrics();
      return /outrigger_outbound_in_flight\{target="moving"\}/.test(text) ? undefined : text;
    });
    t.notMatch(after, /outrigger_outbound_in_flight\{target="moving"\}/, 'no in-flight series left (and never -1)');
    t.notMatch(after, /outrigger_outbound_circuit_state\{target="moving"\}/, 'no circuit series left');
  },
);

t.test("stopping the outbound service waits for a removed target's call in flight", async (t) => {
  const { upstream, held } = await startHoldingUpstream(t);
  const { call, sidecar } = await sidecarWith(t, [{ name: 'leaving', baseUrl: `http://127.0.0.1:${upstream.port}` }]);
  const slow = call('/v1/outbound/leaving/slow');
  await until('the call reaches the upstream', () => held.length === 1);
  sidecar.outbound.apply([]);
  let closed = false;
  const closing = sidecar.outbound.close().then(() => {
    closed = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.notOk(closed, 'not closed while the removed target still has a call in flight');
  held.shift()?.end('done');
  t.equal((await slow).text, 'done', 'the call is answered');
  await closing;
  t.ok(closed);
});

t.test('a hot reload lets the calls the old target took finish on it, queued ones included', async (t) => {
  const { upstream, held } = await startHoldingUpstream(t);
  const target = { name: 'narrow', baseUrl: `http://127.0.0.1:${upstream.port}`, bulkhead: { maxConcurrent: 1 } };
  const { call, ops, sidecar } = await sidecarWith(t, [target]);
  const first = call('/v1/outbound/narrow/1');
  await until('the first call reaches the upstream', () => held.length === 1);
  const second = call('/v1/outbound/narrow/2');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(upstream.hits.length, 1, 'one in flight, one queued in the bulkhead');

  // The new policy sends to another base path, so the upstream can tell the two clients apart.
  const moved = { ...target, baseUrl: `${target.baseUrl}/v2`, timeout: '5s' };
  t.same(sidecar.outbound.apply([{ target: TargetSchema.parse(moved), field: 'narrow' }]), new Map());
  held.shift()?.end('one');
  t.equal((await first).text, 'one');
  await until('the queued call reaches the upstream', () => held.length === 1);
  held.shift()?.end('two');
  const queued = await second;
  t.equal(queued.status, 200, 'the queued call was sent after the reload, not failed on a closed pool');
  t.equal(queued.text, 'two');
  const third = call('/v1/outbound/narrow/3');
  await until('the third call reaches the upstream', () => held.length === 1);
  held.shift()?.end('three');
  t.equal((await third).text, 'three');
  t.same(
    upstream.hits.map((hit) => hit.url),
    ['/1', '/2', '/v2/3'],
    'the calls taken before the reload went out on the old target, the next one on the new',
  );

  sidecar.outbound.apply([]);
  await until('the removed target to leave the gauge', async () => {
    const metrics = await (await fetch(`${ops}/metrics`)).text();
    return !/outrigger_outbound_in_flight\{target="narrow"\}/.test(metrics);
  });
  t.pass('a removed target leaves no series');
});

t.test("an upstream's own error status passes through untouched", async (t) => {
  const upstream = await startUpstream(
    t,
    reply(502, { 'content-type': 'application/json', 'x-from': 'upstream' }, '{"e":1}'),
  );
  const { call } = await sidecarWith(t, [
    { name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}`, retry: { maxAttempts: 1 } },
  ]);
  const answer = await call('/v1/outbound/api/x', { method: 'POST', body: '{}' });
  t.equal(answer.status, 502);
  t.equal(answer.headers['content-type'], 'application/json');
  t.equal(answer.headers['x-from'], 'upstream');
  t.equal(answer.text, '{"e":1}', 'not turned into UPSTREAM_UNREACHABLE');
});

t.test('an answer cut short is a failed attempt: retried when safe, else UPSTREAM_UNREACHABLE', async (t) => {
  let cut = 0;
  const cutShort: UpstreamHandler = (request, response) => {
    request.resume();
    cut++;
    response.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
    response.write('the first 22 of 100 b', () => response.socket?.destroy());
  };
  const upstream = await startUpstream(t, sequence(cutShort, cutShort, reply(200, {}, 'whole')));
  const { call } = await sidecarWith(t, [
    { name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}`, retry: { initial: '5ms', jitter: 0 } },
  ]);
  const answer = await call('/v1/outbound/api/x');
  t.equal(answer.status, 200);
  t.equal(answer.text, 'whole', 'the app never sees the broken answers');
  t.equal(answer.headers['outrigger-attempts'], '3');
  t.equal(cut, 2);

  upstream.handle(cutShort);
  const post = await call('/v1/outbound/api/x', { method: 'POST', body: '{}' });
  isProblem(t, post, 'UPSTREAM_UNREACHABLE', 502);
  t.equal(post.headers['outrigger-attempts'], '1', 'a POST without idempotency-key is not retried');
  t.match(post.json().detail, /the connection was reset or closed/);

  upstream.handle((request, response) => {
    request.resume();
    response.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
    response.write('and then nothing');
  });
  const { call: impatient } = await sidecarWith(t, [
    { name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}`, timeout: '300ms', retry: { maxAttempts: 1 } },
  ]);
  const stalled = await impatient('/v1/outbound/api/x');
  isProblem(t, stalled, 'UPSTREAM_TIMEOUT', 504);
  t.match(stalled.json().detail, /no answer within 300 ms/);
});

t.test('a retried answer is read to its end, so its connection is used again', async (t) => {
  const sockets = new Set<unknown>();
  const chunked503: UpstreamHandler = (request, response) => {
    sockets.add(request.socket);
    request.resume();
    response.writeHead(503, { 'content-type': 'text/plain' });
    response.write('busy, ');
    setTimeout(() => response.end('try again'), 50); // after the back-off: the answer is still coming when it is dropped
  };
  const upstream = await startUpstream(t, chunked503);
  const { call } = await sidecarWith(t, [
    { name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}`, retry: { initial: '5ms', jitter: 0 } },
  ]);
  const answer = await call('/v1/outbound/api/x');
  t.equal(answer.status, 503);
  t.equal(answer.text, 'busy, try again', 'the last answer streams back whole');
  t.equal(answer.headers['outrigger-attempts'], '3');
  t.equal(upstream.hits.length, 3);
  t.equal(sockets.size, 1, 'three attempts on one kept-alive connection');
});

t.test('a retried answer that fails while its back-off runs is dropped, and the call goes on', async (t) => {
  const brokenOff: UpstreamHandler = (request, response) => {
    request.resume();
    response.writeHead(503, { 'content-type': 'text/plain' });
    response.write('busy, ');
    setTimeout(() => response.socket?.destroy(), 20); // well inside the 200 ms back-off
  };
  const upstream = await startUpstream(t, sequence(brokenOff, reply(200, {}, 'better')));
  const { api, ops, call } = await sidecarWith(t, [
    { name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}`, retry: { initial: '200ms', jitter: 0 } },
  ]);
  const answer = await call('/v1/outbound/api/x');
  t.equal(answer.status, 200, 'the target hanging up on the answer being retried does not end the call');
  t.equal(answer.text, 'better');
  t.equal(answer.headers['outrigger-attempts'], '2');

  // The app goes away during the back-off, with the retried answer still unread.
  upstream.handle(brokenOff);
  const leaving = request(`${api}/v1/outbound/api/y`);
  leaving.on('error', () => {});
  leaving.end();
  const hits = upstream.hits.length;
  const metrics = async () => (await fetch(`${ops}/metrics`)).text();
  // Its first attempt counted as a 5xx (the first call's was the first): the back-off has begun.
  await until('the first attempt is answered', async () =>
    /outrigger_outbound_attempts_total\{target="api",outcome="5xx"\} 2/.test(await metrics()),
  );
  leaving.destroy();
  await until('the call is counted as aborted', async () =>
    /outrigger_outbound_requests_total\{target="api",method="GET",status="aborted"\} 1/.test(await metrics()),
  );
  await new Promise((resolve) => setTimeout(resolve, 300)); // past the 200 ms back-off
  t.equal(upstream.hits.length, hits + 1, 'no retry is sent for an app that went away');
  upstream.handle(reply(200, {}, 'still here'));
  t.equal((await call('/v1/outbound/api/z')).text, 'still here', 'the sidecar is still serving');
});

t.test('a refused connection is UPSTREAM_UNREACHABLE after the retries, naming only the target', async (t) => {
  const upstream = await startUpstream(t);
  const port = upstream.port;
  const { call } = await sidecarWith(t, [
    { name: 'gone', baseUrl: `http://127.0.0.1:1`, retry: { initial: '5ms' } },
    { name: 'fine', baseUrl: `http://127.0.0.1:${port}` },
  ]);
  const answer = await call('/v1/outbound/gone/x');
  isProblem(t, answer, 'UPSTREAM_UNREACHABLE', 502);
  t.equal(answer.headers['outrigger-attempts'], '3', 'connect-error is retried');
  t.match(answer.json().detail, /target "gone": could not connect \(ECONNREFUSED\) \(3 attempts\)/);
  t.notMatch(answer.text, /127\.0\.0\.1/);
  t.equal((await call('/v1/outbound/fine/x')).status, 200, 'other targets are not affected');
});
