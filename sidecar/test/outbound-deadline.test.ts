// Outbound calls, the deadline: targets[].deadline and the app's
// outrigger-timeout bound a whole call (the bulkhead's queue, every attempt
// and back-off) until its answer's headers go back. A real upstream on
// loopback, an in-process sidecar.
import { createServer, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { answeredMidBody } from './support/raw-connection.ts';
import { type Answer, circuitOf, reply, sidecarWith, startHoldingUpstream, startUpstream } from './support/upstream.ts';
import { until } from './support/wait.ts';

const isTimeout = (t: Test, answer: Answer, attempts: string) => {
  t.equal(answer.status, 504, 'UPSTREAM_TIMEOUT is 504');
  t.match(answer.headers['content-type'], /^application\/problem\+json/);
  t.match(answer.json(), { code: 'UPSTREAM_TIMEOUT', status: 504 });
  t.equal(answer.headers['outrigger-attempts'], attempts, `outrigger-attempts: ${attempts}`);
};

/** The holding upstream's answer to requests other than /hold. */
const elsewhere = reply(200, {}, 'fine');

/** A server that takes connections and never says a word: a TLS handshake with it never ends. */
async function silentServer(t: Test): Promise<{ port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const silent = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });
  return { port: (silent.address() as { port: number }).port, sockets };
}

const metricsOf = async (ops: string) => (await fetch(`${ops}/metrics`)).text();

t.test('outrigger-timeout cuts an attempt: 504, the request aborted, and the breaker does not count it', async (t) => {
  const { upstream, held, closed } = await startHoldingUpstream(t, elsewhere);
  const { call, ops } = await sidecarWith(t, [
    {
      name: 'slow',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      timeout: '5s',
      circuitBreaker: { consecutiveFailures: 1 },
    },
  ]);
  const started = Date.now();
  const answer = await call('/v1/outbound/slow/hold', { headers: { 'outrigger-timeout': '300ms' } });
  const took = Date.now() - started;
  isTimeout(t, answer, '1');
  t.match(
    answer.json().detail,
    /^target "slow": no answer within the call's deadline of 300 ms \(outrigger-timeout\) \(1 attempt\)$/,
  );
  t.ok(took >= 250 && took < 4_000, `answered at the deadline, not at the 5 s timeout (${took} ms)`);
  await until('the upstream sees the request aborted', () => closed.length === 1);
  t.equal(held.length, 1, 'sent once: a timeout is not retried by default');

  const metrics = await metricsOf(ops);
  t.match(metrics, /outrigger_outbound_attempts_total\{target="slow",outcome="timeout"\} 1/);
  t.match(metrics, /outrigger_outbound_requests_total\{target="slow",method="GET",status="UPSTREAM_TIMEOUT"\} 1/);
  t.match(metrics, /outrigger_outbound_circuit_state\{target="slow"\} 0/, 'consecutiveFailures is 1, yet closed');
  const next = await call('/v1/outbound/slow/ok');
  t.equal(next.status, 200, 'the next call goes through');
  t.equal(next.text, 'fine');
  t.match(await metricsOf(ops), /outrigger_outbound_in_flight\{target="slow"\} 0/);
});

t.test(
  'a hung target cut by its own deadline is a timeout for the breaker; cut by outrigger-timeout, it is not',
  async (t) => {
    const { upstream, held } = await startHoldingUpstream(t, elsewhere);
    const breaker = { consecutiveFailures: 2, halfOpenAfter: '1m' };
    const { call } = await sidecarWith(t, [
      {
        name: 'hung',
        baseUrl: `http://127.0.0.1:${upstream.port}`,
        timeout: '5s',
        deadline: '200ms',
        circuitBreaker: breaker,
      },
      { name: 'asked', baseUrl: `http://127.0.0.1:${upstream.port}`, timeout: '5s', circuitBreaker: breaker },
    ]);
    const circuit = (name: string) => circuitOf(call, name);
    isTimeout(t, await call('/v1/outbound/hung/hold'), '1');
    t.equal(await circuit('hung'), 'closed', 'one timeout: still closed');
    isTimeout(t, await call('/v1/outbound/hung/hold'), '1');
    t.equal(await circuit('hung'), 'open', 'two timeouts in a row (consecutiveFailures: 2): open');
    const third = await call('/v1/outbound/hung/hold');
    t.equal(third.status, 503);
    t.match(third.json(), { code: 'CIRCUIT_OPEN' });
    t.equal(held.length, 2, 'the third call was not sent');

    for (let i = 0; i < 3; i++) {
      isTimeout(t, await call('/v1/outbound/asked/hold', { headers: { 'outrigger-timeout': '200ms' } }), '1');
    }
    t.equal(await circuit('asked'), 'closed', "the app's header cut them: the breaker counts none");
    t.equal(held.length, 5, 'all three were sent');
  },
);

t.test('the deadline cuts an attempt still connecting (a TLS handshake that never ends)', async (t) => {
  const { port, sockets } = await silentServer(t);
  const { call } = await sidecarWith(t, [
    { name: 'mute', baseUrl: `https://127.0.0.1:${port}`, timeout: '5s', deadline: '300ms' },
  ]);
  const started = Date.now();
  const answer = await call('/v1/outbound/mute/x');
  const took = Date.now() - started;
  isTimeout(t, answer, '1');
  t.match(answer.json().detail, /no answer within the call's deadline of 300 ms/);
  t.ok(took < 4_000, `answered at the deadline, not after the 5 s connect timeout (${took} ms)`);
  t.equal(sockets.length, 1, 'the connection was being made');
  for (const socket of sockets) socket.destroy(); // else the sidecar's pool closes only after its connect timeout
});

t.test(
  'connecting ends at the attempt timeout, on time, and a retry connects anew (a TLS handshake that never ends)',
  async (t) => {
    const { port, sockets } = await silentServer(t);
    const { call } = await sidecarWith(t, [
      {
        name: 'mute',
        baseUrl: `https://127.0.0.1:${port}`,
        timeout: '100ms',
        retry: { maxAttempts: 3, initial: '10ms', max: '10ms' },
        bulkhead: { maxConcurrent: 1 },
      },
    ]);
    const started = Date.now();
    const answer = await call('/v1/outbound/mute/x');
    const took = Date.now() - started;
    t.equal(answer.status, 502);
    t.equal(answer.json().code, 'UPSTREAM_UNREACHABLE');
    t.match(answer.json().detail, /could not connect \(UND_ERR_CONNECT_TIMEOUT\)/);
    t.equal(answer.headers['outrigger-attempts'], '3');
    // The abandoned connection is closed at the timeout, so its pool slot (one here) is free for the next attempt.
    t.equal(sockets.length, 3, 'each attempt made a connection of its own');
    // undici's connect timeout runs on timers with a tick of about half a second: each attempt took 0.5-1 s.
    t.ok(took >= 290 && took < 1_300, `3 attempts of 100 ms, not of a tick of undici's (${took} ms)`);
  },
);

t.test('the per-attempt timeout, when it comes first, is a timeout the breaker counts', async (t) => {
  const { upstream } = await startHoldingUpstream(t, elsewhere);
  const { call, ops } = await sidecarWith(t, [
    {
      name: 'slow',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      timeout: '200ms',
      deadline: '5s',
      circuitBreaker: { consecutiveFailures: 1 },
    },
  ]);
  const answer = await call('/v1/outbound/slow/hold');
  isTimeout(t, answer, '1');
  t.match(answer.json().detail, /no answer within 200 ms \(1 attempt\)/);
  t.match(await metricsOf(ops), /outrigger_outbound_circuit_state\{target="slow"\} 2/, 'the circuit opened');
});

t.test('the deadline passing in the bulkhead queue: 504, nothing sent, the line left', async (t) => {
  const { upstream, held } = await startHoldingUpstream(t, elsewhere);
  const { call, ops } = await sidecarWith(t, [
    {
      name: 'narrow',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      deadline: '30s',
      bulkhead: { maxConcurrent: 1, maxQueue: 5 },
    },
  ]);
  const first = call('/v1/outbound/narrow/hold');
  await until('the first call reaches the upstream', () => held.length === 1);
  const queued = await call('/v1/outbound/narrow/hold', { headers: { 'outrigger-timeout': '300ms' } });
  isTimeout(t, queued, '0');
  t.match(
    queued.json().detail,
    /^target "narrow": the call's deadline of 300 ms \(outrigger-timeout\) passed while waiting for a slot \(0 attempts\)$/,
  );
  t.equal(upstream.hits.length, 1, 'the queued call was not sent');
  const metrics = await metricsOf(ops);
  t.match(metrics, /outrigger_outbound_requests_total\{target="narrow",method="GET",status="UPSTREAM_TIMEOUT"\} 1/);
  t.notMatch(metrics, /outrigger_outbound_rejected_total\{target="narrow"/, 'not a refusal');
  t.notMatch(metrics, /outrigger_outbound_attempts_total\{target="narrow",outcome="timeout"\}/, 'no attempt');
  t.match(metrics, /outrigger_outbound_in_flight\{target="narrow"\} 1/);

  held.shift()?.end('one');
  t.equal((await first).text, 'one', 'the call holding the slot was not disturbed');
  const after = await call('/v1/outbound/narrow/ok');
  t.equal(after.text, 'fine', 'the timed-out call left the line: the next one is served');
  t.same(
    upstream.hits.map((hit) => hit.url),
    ['/hold', '/ok'],
  );
});

t.test('a back-off that would end past the deadline is not waited out: the last answer goes back', async (t) => {
  const upstream = await startUpstream(t, reply(503, { 'retry-after': '2' }));
  const { call } = await sidecarWith(t, [
    { name: 'busy', baseUrl: `http://127.0.0.1:${upstream.port}`, deadline: '1s', retry: { max: '5s' } },
    {
      name: 'backing-off',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      deadline: '1s',
      retry: { initial: '2s', max: '2s', jitter: 0 },
    },
  ]);
  const started = Date.now();
  const answer = await call('/v1/outbound/busy/x');
  const took = Date.now() - started;
  t.equal(answer.status, 503, "the upstream's answer");
  t.equal(answer.text, 'upstream says 503');
  t.equal(answer.headers['retry-after'], '2', 'with its retry-after');
  t.equal(answer.headers['outrigger-attempts'], '1');
  t.equal(upstream.hits.length, 1);
  t.ok(took < 1_000, `not held until the deadline (${took} ms)`);

  upstream.handle(reply(503));
  const backedOff = await call('/v1/outbound/backing-off/x');
  t.equal(backedOff.status, 503, 'a 2 s back-off does not fit in a 1 s deadline either');
  t.equal(backedOff.headers['outrigger-attempts'], '1');
  t.equal(upstream.hits.length, 2);

  upstream.handle(reply(503, { 'retry-after': '1' }));
  const longer = await call('/v1/outbound/busy/x', { headers: { 'outrigger-timeout': '10s' } });
  t.equal(longer.headers['outrigger-attempts'], '1', "a longer outrigger-timeout does not lengthen the target's 1 s");
});

t.test('a back-off that fits in the deadline is waited out', async (t) => {
  let calls = 0;
  const upstream = await startUpstream(t, (...args) => (calls++ === 0 ? reply(503) : reply(200, {}, 'again'))(...args));
  const { call } = await sidecarWith(t, [
    {
      name: 'api',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      deadline: '3s',
      retry: { initial: '200ms', jitter: 0 },
    },
  ]);
  const answer = await call('/v1/outbound/api/x');
  t.equal(answer.status, 200);
  t.equal(answer.text, 'again');
  t.equal(answer.headers['outrigger-attempts'], '2');
});

t.test('outrigger-timeout shortens the target deadline, or sets one alone; it is never forwarded', async (t) => {
  const { upstream, closed } = await startHoldingUpstream(t, elsewhere);
  const { call } = await sidecarWith(t, [
    { name: 'bounded', baseUrl: `http://127.0.0.1:${upstream.port}`, timeout: '10s', deadline: '5s' },
    { name: 'open-ended', baseUrl: `http://127.0.0.1:${upstream.port}`, timeout: '10s' },
    { name: 'tight', baseUrl: `http://127.0.0.1:${upstream.port}`, timeout: '10s', deadline: '300ms' },
  ]);
  const shortened = await call('/v1/outbound/bounded/hold', { headers: { 'outrigger-timeout': '300ms' } });
  isTimeout(t, shortened, '1');
  t.match(shortened.json().detail, /no answer within the call's deadline of 300 ms \(outrigger-timeout\)/);

  const alone = await call('/v1/outbound/open-ended/hold', { headers: { 'outrigger-timeout': 'PT0.3S' } });
  isTimeout(t, alone, '1');
  t.match(alone.json().detail, /no answer within the call's deadline of 300 ms \(outrigger-timeout\)/);

  const longer = await call('/v1/outbound/tight/hold', { headers: { 'outrigger-timeout': '1m' } });
  isTimeout(t, longer, '1');
  t.match(longer.json().detail, /no answer within the call's deadline of 300 ms \(1 attempt\)/, "the target's wins");
  await until('the three requests aborted', () => closed.length === 3);

  const fine = await call('/v1/outbound/open-ended/ok', { headers: { 'outrigger-timeout': '2s', 'x-app': 'kept' } });
  t.equal(fine.status, 200);
  const hit = upstream.hits.at(-1);
  t.equal(hit?.headers['x-app'], 'kept');
  t.notOk('outrigger-timeout' in (hit?.headers ?? {}), 'outrigger-timeout stays with the sidecar');
});

t.test('a malformed or non-positive outrigger-timeout is refused with 400 before anything is sent', async (t) => {
  const upstream = await startUpstream(t);
  const { call, ops } = await sidecarWith(t, [
    { name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}`, bulkhead: { maxConcurrent: 1, maxQueue: 0 } },
  ]);
  for (const value of ['soon', '10', '-1s', '0s', '0ms', '0.4ms', '1.5 s', '']) {
    const answer = await call('/v1/outbound/api/x', { headers: { 'outrigger-timeout': value } });
    t.equal(answer.status, 400, JSON.stringify(value));
    t.match(answer.json(), { code: 'REQUEST_INVALID', status: 400 });
    t.match(answer.json().detail, /^header outrigger-timeout: .* is not a duration above 0/);
  }
  // Longer than setTimeout's 2^31 - 1 ms, a deadline would fire at once; '1' and 400 zeros is Infinity ms.
  for (const value of ['25d', '2147483648ms', '24d1ms', `1${'0'.repeat(400)}ms`]) {
    const answer = await call('/v1/outbound/api/x', { headers: { 'outrigger-timeout': value } });
    t.equal(answer.status, 400, value.slice(0, 20));
    t.match(answer.json(), { code: 'REQUEST_INVALID', status: 400 });
    t.match(answer.json().detail, /^header outrigger-timeout: .* is longer than 24d, the longest deadline/);
  }
  t.equal((await call('/v1/outbound/api/x', { headers: { 'outrigger-timeout': '24d' } })).status, 200, '24d is taken');
  t.equal(upstream.hits.length, 1, 'the upstream saw only the call with 24d');
  const metrics = await metricsOf(ops);
  t.notMatch(metrics, /outrigger_outbound_requests_total\{target="api",method="GET",status="REQUEST_INVALID"/);
  t.match(metrics, /outrigger_outbound_attempts_total\{target="api",outcome="2xx"\} 1/, 'one attempt: the 24d call');
  t.match(metrics, /outrigger_outbound_in_flight\{target="api"\} 0/, 'no bulkhead slot held');
  t.equal((await call('/v1/outbound/api/x')).status, 200, 'and the one slot (no queue) is free');
});

t.test("a streamed answer's body is not cut by the deadline once its headers went back", async (t) => {
  const SIZE = 200 * 1024; // over 64 KiB: it streams
  const upstream = await startUpstream(t, (request, response) => {
    request.resume();
    response.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(SIZE) });
    response.write('x'.repeat(SIZE / 2));
    setTimeout(() => response.end('y'.repeat(SIZE / 2)), 600); // past the 300 ms deadline, within the timeout
  });
  const { call } = await sidecarWith(t, [
    { name: 'big', baseUrl: `http://127.0.0.1:${upstream.port}`, timeout: '5s', deadline: '300ms' },
  ]);
  const answer = await call('/v1/outbound/big/x');
  t.equal(answer.status, 200);
  t.equal(answer.text.length, SIZE, 'the whole body arrived');
  t.ok(answer.text.endsWith('y'), 'its second half, sent after the deadline, too');
});

t.test('an answer read whole (up to 64 KiB) is part of its attempt: a late body is cut', async (t) => {
  const { upstream, closed } = await startHoldingUpstream(t, (request, response) => {
    request.resume();
    response.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
    response.write('the first part');
  });
  const { call } = await sidecarWith(t, [
    { name: 'small', baseUrl: `http://127.0.0.1:${upstream.port}`, timeout: '5s', deadline: '300ms' },
  ]);
  const answer = await call('/v1/outbound/small/x');
  isTimeout(t, answer, '1');
  t.match(answer.json().detail, /no answer within the call's deadline of 300 ms/);
  await until('the upstream sees the request aborted', () => closed.length === 1);
});

t.test('a half-open trial is not cut: the call ends at its deadline, the trial decides the circuit', async (t) => {
  const { upstream, held } = await startHoldingUpstream(t, reply(500));
  const { call, ops } = await sidecarWith(t, [
    {
      name: 'weak',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      retry: { maxAttempts: 1 },
      circuitBreaker: { consecutiveFailures: 1, halfOpenAfter: '500ms' },
    },
  ]);
  const circuit = () => circuitOf(call);
  t.equal((await call('/v1/outbound/weak/fail')).status, 500);
  t.equal(await circuit(), 'open');
  await new Promise((resolve) => setTimeout(resolve, 550));

  const trial = await call('/v1/outbound/weak/hold', { headers: { 'outrigger-timeout': '300ms' } });
  isTimeout(t, trial, '1');
  t.match(trial.json().detail, /no answer within the call's deadline of 300 ms \(outrigger-timeout\)/);
  t.equal(held.length, 1, 'the trial reached the upstream');
  t.equal(await circuit(), 'half-open', 'the trial goes on: neither failed nor passed');
  t.match(await metricsOf(ops), /outrigger_outbound_in_flight\{target="weak"\} 1/, 'and keeps its slot');
  t.equal((await call('/v1/outbound/weak/ok')).status, 503, 'other calls: CIRCUIT_OPEN meanwhile');

  held.shift()?.end('late but fine');
  await until('the trial to end', async () => (await circuit()) !== 'half-open');
  t.equal(await circuit(), 'closed', "the trial's answer closed the circuit");
  t.match(await metricsOf(ops), /outrigger_outbound_in_flight\{target="weak"\} 0/);
  upstream.handle(reply(200, {}, 'back'));
  t.equal((await call('/v1/outbound/weak/ok')).text, 'back');
});

t.test("the deadline cuts the wait for the app's request body: 504, nothing sent, the connection kept", async (t) => {
  const upstream = await startUpstream(t, reply(200, {}, 'fine'));
  const { api, ops } = await sidecarWith(t, [{ name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}` }]);
  const { answer, took, next } = await answeredMidBody(t, api, {
    method: 'POST',
    path: '/v1/outbound/api/x',
    headers: { 'content-length': '20', 'outrigger-timeout': '300ms' },
    first: '0123456789',
    rest: '0123456789',
    next: '/v1/outbound/api/ok',
  });
  isTimeout(t, answer, '0');
  t.match(
    answer.json().detail,
    /^target "api": the call's deadline of 300 ms \(outrigger-timeout\) passed while the app's request body arrived \(0 attempts\)$/,
  );
  t.ok(took >= 250 && took < 4_000, `answered at the deadline (${took} ms)`);
  t.equal(next.status, 200, 'the rest of the body was dropped: the next request on the same connection is served');
  t.equal(next.text, 'fine');
  t.same(
    upstream.hits.map((hit) => hit.url),
    ['/ok'],
    'the cut call was not sent',
  );
  const metrics = await metricsOf(ops);
  t.match(metrics, /outrigger_outbound_requests_total\{target="api",method="POST",status="UPSTREAM_TIMEOUT"\} 1/);
  t.notMatch(metrics, /outrigger_outbound_attempts_total\{target="api",outcome="timeout"\}/, 'no attempt');
  t.match(metrics, /outrigger_outbound_in_flight\{target="api"\} 0/);
});

t.test('a streamed upload (over 64 KiB) cut by the deadline is answered with 504 on a connection kept', async (t) => {
  const { upstream, held, closed } = await startHoldingUpstream(t, elsewhere);
  const { api } = await sidecarWith(t, [{ name: 'slow', baseUrl: `http://127.0.0.1:${upstream.port}`, timeout: '5s' }]);
  const half = Buffer.alloc(100 * 1024, 'u');
  const framings = {
    'content-length': { headers: { 'content-length': String(2 * half.length) }, first: half, rest: half },
    // Chunked: the first 64 KiB are read to see whether the body can be held for retries, then it streams.
    chunked: {
      headers: { 'transfer-encoding': 'chunked' },
      first: Buffer.concat([Buffer.from(`${half.length.toString(16)}\r\n`), half, Buffer.from('\r\n')]),
      rest: Buffer.concat([Buffer.from(`${half.length.toString(16)}\r\n`), half, Buffer.from('\r\n0\r\n\r\n')]),
    },
  };
  for (const [framing, upload] of Object.entries(framings)) {
    const { answer, took, next } = await answeredMidBody(t, api, {
      ...upload,
      method: 'POST',
      path: '/v1/outbound/slow/hold',
      headers: { ...upload.headers, 'outrigger-timeout': '300ms' },
      next: '/v1/outbound/slow/ok',
    });
    isTimeout(t, answer, '1');
    t.match(
      answer.json().detail,
      /no answer within the call's deadline of 300 ms \(outrigger-timeout\) \(1 attempt\)$/,
    );
    t.ok(took < 4_000, `${framing}: answered at the deadline (${took} ms)`);
    t.equal(next.status, 200, `${framing}: the next request on the same connection is served`);
  }
  t.equal(held.length, 2, 'both uploads reached the upstream');
  await until('the upstream sees both requests aborted', () => closed.length === 2);
});

t.test('a retried answer still streaming is dropped at the deadline, and the retry is not sent', async (t) => {
  const SIZE = 200 * 1024; // over 64 KiB: it streams, and is discarded before a retry
  const { upstream, closed } = await startHoldingUpstream(t, (request, response) => {
    request.resume();
    response.writeHead(503, { 'content-type': 'text/plain', 'content-length': String(SIZE) });
    response.write('x'.repeat(SIZE / 2)); // the rest never comes
  });
  const { call, ops } = await sidecarWith(t, [
    {
      name: 'busy',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      timeout: '5s',
      deadline: '500ms',
      retry: { initial: '10ms', jitter: 0 },
    },
  ]);
  const started = Date.now();
  const answer = await call('/v1/outbound/busy/x');
  const took = Date.now() - started;
  isTimeout(t, answer, '1');
  t.match(
    answer.json().detail,
    /^target "busy": the call's deadline of 500 ms passed before attempt 2 was sent \(1 attempt\)$/,
  );
  t.ok(took < 4_000, `answered at the deadline, not after the 5 s gap in the dropped body (${took} ms)`);
  t.equal(upstream.hits.length, 1, 'the retry was not sent');
  await until('the upstream sees its answer dropped', () => closed.length === 1);
  const metrics = await metricsOf(ops);
  t.match(metrics, /outrigger_outbound_attempts_total\{target="busy",outcome="5xx"\} 1/);
  t.notMatch(metrics, /outrigger_outbound_attempts_total\{target="busy",outcome="(timeout|aborted)"\}/, 'one attempt');
  t.match(metrics, /outrigger_outbound_in_flight\{target="busy"\} 0/);
});

t.test(
  "a followed redirect's answer still streaming is dropped at the deadline, and the next hop not sent",
  async (t) => {
    const SIZE = 200 * 1024; // over 64 KiB: it streams, and is discarded before the next hop
    const { upstream, closed } = await startHoldingUpstream(t, (request, response) => {
      request.resume();
      response.writeHead(302, { location: '/elsewhere', 'content-length': String(SIZE) });
      response.write('x'.repeat(SIZE / 2)); // the rest never comes
    });
    const { call } = await sidecarWith(t, [
      {
        name: 'moved',
        baseUrl: `http://127.0.0.1:${upstream.port}`,
        followRedirects: true,
        timeout: '5s',
        deadline: '300ms',
      },
    ]);
    const started = Date.now();
    const answer = await call('/v1/outbound/moved/x');
    const took = Date.now() - started;
    isTimeout(t, answer, '1');
    t.match(answer.json().detail, /no answer within the call's deadline of 300 ms \(1 attempt\)$/);
    t.ok(took < 4_000, `answered at the deadline, not after the 5 s gap in the dropped body (${took} ms)`);
    await until('the upstream sees its answer dropped', () => closed.length === 1);
    t.same(
      upstream.hits.map((hit) => hit.url),
      ['/x'],
      'the redirect was not followed',
    );
  },
);

t.test('a retry that is the half-open trial counts once it is sent, not when the call ends before', async (t) => {
  const SIZE = 200 * 1024; // the first answer streams and stalls: the trial waits for it to be dropped
  const upstream = await startUpstream(t, (request, response) => {
    request.resume();
    response.writeHead(503, { 'content-length': String(SIZE) });
    response.write('x'.repeat(SIZE / 2)); // the rest never comes
  });
  const { call } = await sidecarWith(t, [
    {
      name: 'weak',
      baseUrl: `http://127.0.0.1:${upstream.port}`,
      timeout: '2s',
      deadline: '600ms',
      retry: { initial: '200ms', jitter: 0 },
      circuitBreaker: { consecutiveFailures: 1, halfOpenAfter: '100ms' },
    },
  ]);
  const answer = await call('/v1/outbound/weak/x');
  isTimeout(t, answer, '1');
  t.match(answer.json().detail, /\(1 attempt\)$/);
  t.equal(upstream.hits.length, 1, 'the trial had not been sent when the call ended');
  // The trial goes on without the call (its outcome decides the circuit): sent once the stalled answer is dropped.
  await until('the trial sent, after the 2 s gap in the dropped answer', () => upstream.hits.length === 2, {
    timeoutMs: 6_000,
  });
});

t.test(
  'a streamed upload whose attempt is still connecting when the deadline passes: 504, the connection kept',
  async (t) => {
    const { port } = await silentServer(t);
    const upstream = await startUpstream(t, reply(200, {}, 'fine'));
    const { api } = await sidecarWith(t, [
      { name: 'mute', baseUrl: `https://127.0.0.1:${port}`, timeout: '5s' },
      { name: 'api', baseUrl: `http://127.0.0.1:${upstream.port}` },
    ]);
    // The rest is large: a small one would be read by the app's connection anyway, whatever became of the upload.
    const [first, rest] = [Buffer.alloc(100 * 1024, 'u'), Buffer.alloc(2 * 1024 * 1024, 'r')];
    const { answer, next, nextTook } = await answeredMidBody(t, api, {
      method: 'PUT',
      path: '/v1/outbound/mute/up',
      headers: { 'content-length': String(first.length + rest.length), 'outrigger-timeout': '300ms' },
      first,
      rest,
      next: '/v1/outbound/api/ok',
    });
    isTimeout(t, answer, '1');
    t.equal(next.text, 'fine', 'the next request on the same connection is served');
    t.ok(
      nextTook < 2_500,
      `at once: the upload's rest was dropped, not held until the 5 s connect timeout (${nextTook} ms)`,
    );
  },
);
