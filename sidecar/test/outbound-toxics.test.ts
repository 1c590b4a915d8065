// Outbound calls through Toxiproxy: latency, a reset peer, a black hole and
// a host that goes away, between the sidecar and a real upstream.
import t, { type Test } from 'tap';
import type { TargetInput } from '../src/config/target.ts';
import { startInProcess } from './support/in-process.ts';
import { startToxiproxy } from './support/toxiproxy.ts';
import { apiClient, reply, startUpstream } from './support/upstream.ts';

async function throughToxiproxy(t: Test, target: Omit<TargetInput, 'name' | 'baseUrl'>) {
  const upstream = await startUpstream(t, reply(200, {}, 'hello'));
  const toxiproxy = await startToxiproxy(t);
  const proxy = await toxiproxy.proxy('upstream', upstream.port);
  const { api, ops } = await startInProcess(
    t,
    { appId: 'outbound', targets: [{ name: 'api', baseUrl: `http://127.0.0.1:${proxy.port}`, ...target }] },
    { waitForBroker: false },
  );
  return { upstream, proxy, ops, call: apiClient(t, api) };
}

const timed = async <T>(run: () => Promise<T>): Promise<[T, number]> => {
  const started = Date.now();
  const result = await run();
  return [result, Date.now() - started];
};

t.test('latency under the timeout is waited for; over it, UPSTREAM_TIMEOUT', async (t) => {
  const { proxy, call } = await throughToxiproxy(t, { timeout: '500ms', retry: { maxAttempts: 1 } });
  await proxy.addToxic('slow', { type: 'latency', attributes: { latency: 200, jitter: 0 } });
  const [fine, took] = await timed(() => call('/v1/outbound/api/x'));
  t.equal(fine.status, 200);
  t.equal(fine.text, 'hello');
  t.ok(took >= 190, `the latency was there (${took} ms)`);

  await proxy.removeToxic('slow');
  await proxy.addToxic('slower', { type: 'latency', attributes: { latency: 1_500, jitter: 0 } });
  const [late, lateTook] = await timed(() => call('/v1/outbound/api/x'));
  t.equal(late.status, 504);
  t.match(late.json(), { code: 'UPSTREAM_TIMEOUT' });
  t.ok(lateTook >= 480 && lateTook < 1_400, `gave up at the 500 ms timeout (${lateTook} ms)`);
});

t.test(
  'a reset peer is retried for GET, then UPSTREAM_UNREACHABLE; a retry after it is removed succeeds',
  async (t) => {
    const { proxy, call, ops } = await throughToxiproxy(t, {
      retry: { maxAttempts: 3, initial: '200ms', max: '200ms', jitter: 0 },
      circuitBreaker: { consecutiveFailures: 100 },
    });
    await proxy.addToxic('reset', { type: 'reset_peer', attributes: { timeout: 0 } });
    const failed = await call('/v1/outbound/api/x');
    t.equal(failed.status, 502);
    t.match(failed.json(), { code: 'UPSTREAM_UNREACHABLE', detail: /reset or closed/ });
    t.equal(failed.headers['outrigger-attempts'], '3');

    // The peer recovers during the back-off: the second attempt gets through.
    const pending = call('/v1/outbound/api/x');
    setTimeout(() => void proxy.removeToxic('reset'), 50);
    const recovered = await pending;
    t.equal(recovered.status, 200);
    t.equal(recovered.headers['outrigger-attempts'], '2');
    const metrics = await (await fetch(`${ops}/metrics`)).text();
    t.match(metrics, /outrigger_outbound_attempts_total\{target="api",outcome="reset"\} 4/);
  },
);

t.test('a black hole (timeout toxic) ends in UPSTREAM_TIMEOUT, not a hang', async (t) => {
  const { proxy, call } = await throughToxiproxy(t, {
    timeout: '300ms',
    retry: { maxAttempts: 2, on: ['timeout'], initial: '10ms' },
  });
  await proxy.addToxic('hole', { type: 'timeout', attributes: { timeout: 0 } });
  const [answer, took] = await timed(() => call('/v1/outbound/api/x'));
  t.equal(answer.status, 504);
  t.match(answer.json(), { code: 'UPSTREAM_TIMEOUT' });
  t.equal(answer.headers['outrigger-attempts'], '2');
  t.ok(took >= 590 && took < 2_000, `two attempts of 300 ms (${took} ms)`);
});

t.test('a host that goes away opens the breaker; when it is back, a trial closes it', async (t) => {
  const { proxy, call, upstream } = await throughToxiproxy(t, {
    retry: { maxAttempts: 1 },
    circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: '500ms' },
  });
  await proxy.setEnabled(false);
  for (let i = 0; i < 2; i++) t.match((await call('/v1/outbound/api/x')).json(), { code: 'UPSTREAM_UNREACHABLE' });
  const open = await call('/v1/outbound/api/x');
  t.equal(open.status, 503);
  t.match(open.json(), { code: 'CIRCUIT_OPEN' });
  t.equal(open.headers['retry-after'], '1');

  await proxy.setEnabled(true);
  await new Promise((resolve) => setTimeout(resolve, 550));
  const trial = await call('/v1/outbound/api/x');
  t.equal(trial.status, 200);
  t.equal((await call('/v1/outbound/api/x')).status, 200, 'closed again');
  t.equal(upstream.hits.length, 2);
});
