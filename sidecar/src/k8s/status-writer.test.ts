import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { errors } from 'undici';
import { until as untilTrue } from '../../test/support/wait.ts';
import { createLogger } from '../telemetry/logger.ts';
import type { JsonPatchOperation, KubeClient } from './api/client.ts';
import { KubeApiError } from './api/errors.ts';
import type { Verdict } from './desired-state.ts';
import type { OutriggerResource } from './resource-watch.ts';
import { isRetryable, StatusWriter } from './status-writer.ts';

/** Polls every 5 ms: the fake API answers at once. */
const until = (what: string, condition: () => boolean) =>
  untilTrue(what, () => condition() || undefined, { timeoutMs: 5_000, intervalMs: 5 });

t.test('a failed status write is retried when the failure may pass', async (t) => {
  for (const code of [408, 409, 429, 500, 502, 503, 504]) {
    t.ok(isRetryable(new KubeApiError(code)), `${code}`);
  }
  t.ok(isRetryable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), 'no connection');
  t.ok(isRetryable(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })), 'connection reset');
  t.ok(isRetryable(new errors.HeadersTimeoutError()), 'no answer in time');
  t.ok(isRetryable(new errors.BodyTimeoutError()), 'an answer that stalled');
  t.ok(isRetryable(new errors.ConnectTimeoutError()), 'no connection in time');
  t.ok(isRetryable(new errors.SocketError('other side closed')), 'the socket failed');
  for (const code of [400, 401, 403, 404, 410, 415, 422]) {
    t.notOk(isRetryable(new KubeApiError(code)), `${code}: an answer about the request itself`);
  }
  t.notOk(isRetryable(new TypeError("Cannot read properties of undefined (reading 'x')")), 'a bug: no code');
  t.notOk(
    isRetryable(
      Object.assign(new TypeError('The "path" argument must be of type string'), { code: 'ERR_INVALID_ARG_TYPE' }),
    ),
    "a bug: Node's code for it",
  );
  t.notOk(isRetryable(new errors.InvalidArgumentError('invalid method')), "a bug: undici's code for it");
  t.notOk(isRetryable(new errors.ClientDestroyedError()), 'the client was closed');
  t.notOk(isRetryable(new SyntaxError('Unexpected token < in JSON')), 'an answer that is not JSON');
  t.notOk(isRetryable('ECONNREFUSED'), 'not an error at all');
});

const resource = (generation = 1): OutriggerResource => ({
  apiVersion: 'outrigger.dev/v1alpha1',
  kind: 'Subscription',
  metadata: { name: 'orders', namespace: 'shop', generation },
});
const verdict = (message: string): Verdict => ({ resource: resource(), ready: true, reason: 'Applied', message });

/** An API server of one resource: `get` waits for `gate` when set; `patch` fails while `failing` is. */
function fakeApi() {
  const fake = {
    stored: resource(),
    gate: undefined as Promise<void> | undefined,
    failing: false,
    /** Deleted after it was read: a patch finds it gone. */
    deleted: false,
    reads: 0,
    /** The message of each patch tried, failed or not. */
    patches: [] as string[],
    api: {
      get: async <T>(): Promise<T> => {
        fake.reads += 1;
        await fake.gate;
        return structuredClone(fake.stored) as T;
      },
      patch: async <T>(_path: string, operations: readonly JsonPatchOperation[]): Promise<T> => {
        const status = operations[0]?.value as OutriggerResource['status'];
        fake.patches.push(status?.conditions?.[0]?.message ?? '');
        if (fake.failing) throw new KubeApiError(500, { message: 'failed calling webhook' });
        if (fake.deleted) throw new KubeApiError(404, { reason: 'NotFound' });
        fake.stored = { ...fake.stored, status };
        return structuredClone(fake.stored) as T;
      },
    } as unknown as KubeClient,
  };
  return fake;
}

t.test(
  'a newer verdict that comes during the read before a retry is written instead of the outdated one',
  async (t) => {
    const fake = fakeApi();
    const statuses = new StatusWriter({
      api: fake.api,
      namespace: 'shop',
      logger: createLogger('silent'),
      retry: { initialMs: 1, maxMs: 1 },
    });
    t.teardown(() => statuses.stop());
    let release = () => {};
    fake.gate = new Promise((resolve) => {
      release = resolve;
    });
    fake.failing = true;
    await statuses.write('Subscription', [verdict('first')]);
    t.same(fake.patches, ['first'], 'the first try failed');
    fake.failing = false;
    await until('the retry to read the resource', () => fake.reads === 1);
    await statuses.write('Subscription', [verdict('second')]);
    release();
    await until('no retry left, and nothing running', () => statuses.retrying === 0 && fake.patches.length >= 2);
    await sleep(20);
    t.same(fake.patches, ['first', 'second'], 'only the newer verdict is written: Ready does not flap');
    t.equal(fake.stored.status?.conditions?.[0]?.message, 'second');
    t.equal(fake.reads, 2, 'read again for the newer verdict');
  },
);

t.test('the back-off doubles up to its cap, with full jitter', async (t) => {
  const run = async (random: () => number) => {
    const fake = fakeApi();
    fake.failing = true;
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger('warn', { write: (line: string) => lines.push(JSON.parse(line)) });
    const statuses = new StatusWriter({
      api: fake.api,
      namespace: 'shop',
      logger,
      retry: { initialMs: 2, maxMs: 8 },
      random,
    });
    await statuses.write('Subscription', [verdict('first')]);
    await until('five failed tries', () => lines.length >= 5);
    statuses.stop();
    return lines.slice(0, 5).map((line) => line.retryInMs);
  };
  t.same(await run(() => 0), [2, 4, 8, 8, 8], 'the longest waits: doubled, up to the cap');
  t.same(await run(() => 0.5), [1, 2, 4, 4, 4], 'half of them');
  const waits = await run(Math.random);
  t.ok(
    [2, 4, 8, 8, 8].every((max, i) => {
      const wait = waits[i];
      return typeof wait === 'number' && Number.isInteger(wait) && wait >= 0 && wait <= max;
    }),
    `each wait anywhere up to its longest (${waits.join(', ')})`,
  );
});

t.test('a resource deleted between the read and the write: said so, not retried', async (t) => {
  const fake = fakeApi();
  const lines: { level: string; msg: string }[] = [];
  const logger = createLogger('info', { write: (line: string) => lines.push(JSON.parse(line)) });
  const statuses = new StatusWriter({ api: fake.api, namespace: 'shop', logger, retry: { initialMs: 1, maxMs: 1 } });
  t.teardown(() => statuses.stop());
  fake.failing = true;
  await statuses.write('Subscription', [verdict('first')]);
  fake.failing = false;
  fake.deleted = true; // the retry reads it, then finds it gone when it writes
  await until('the retry given up', () => statuses.retrying === 0 && fake.patches.length === 2);
  await sleep(20);
  t.equal(fake.patches.length, 2, 'not tried again');
  t.match(lines.at(-1), { level: 'info', msg: 'not writing the status of a resource: it was deleted' });
});
