import t from 'tap';
import { parseConfig } from '../config/load.ts';
import { desiredSubscriptions, desiredTargets, withSecretProblems } from './desired-state.ts';
import type { OutriggerResource } from './resource-watch.ts';

const config = parseConfig({
  appId: 'orders',
  app: { port: 8080 },
  subscriptions: [{ name: 'from-file', topic: 'orders.created', route: '/created' }],
  targets: [{ name: 'file-target', baseUrl: 'https://file.example' }],
});

let created = 0;
const resource = (name: string, spec: Record<string, unknown>): OutriggerResource => ({
  apiVersion: 'outrigger.dev/v1alpha1',
  kind: 'Subscription',
  // Hours apart: an order by the RFC 3339 text, as the API server sends it, not by accident of formatting.
  metadata: { name, generation: 1, creationTimestamp: new Date(Date.UTC(2026, 0, 1, created++)).toISOString() },
  spec: { appId: 'orders', ...spec },
});

t.test('valid resources join the file entries, resolved as the file resolves them', async (t) => {
  const { subscriptions, verdicts } = desiredSubscriptions(config, [
    resource('shipped', { topic: 'orders.shipped', route: '/shipped', concurrency: 4 }),
  ]);
  t.same(
    subscriptions.map((sub) => [sub.name, sub.group, sub.prefetch, sub.retry.maxAttempts]),
    [
      ['from-file', 'orders', 32, 8],
      ['shipped', 'orders', 8, 8],
    ],
    'group defaults to the app id, prefetch to twice the concurrency, retry to its defaults',
  );
  t.match(verdicts, [{ ready: true, reason: 'Applied' }]);
});

t.test('each refusal names its reason and field', async (t) => {
  const { subscriptions, verdicts } = desiredSubscriptions(config, [
    resource('from-file', { topic: 'x', route: '/x' }),
    resource('no-route', { topic: 'x' }),
    resource('bad-retry', { topic: 'y', route: '/y', retry: { initial: '1m', max: '1s' } }),
    resource('same-queue', { topic: 'orders.created', route: '/again' }),
    resource('reserved', { topic: 'amq.direct', route: '/r' }),
  ]);
  t.same(
    subscriptions.map((sub) => sub.name),
    ['from-file'],
  );
  t.match(
    verdicts.map(({ reason, message }) => [reason, message]),
    [
      ['NameConflict', /configuration file has a subscription "from-file"/],
      ['InvalidSpec', /spec\.route: required when mode is push/],
      ['InvalidSpec', /spec\.retry\.initial: must not be longer than retry\.max/],
      ['InvalidSpec', /spec\.group: subscription "from-file" already takes topic "orders\.created"/],
      ['InvalidSpec', /spec\.topic: names starting with "amq\." or "outrigger\." are reserved/],
    ],
  );
});

t.test('of two resources on one queue, the older one wins, whatever order they are listed in', async (t) => {
  const older = resource('older', { topic: 'orders.paid', route: '/a' });
  const newer = resource('newer', { topic: 'orders.paid', route: '/b' });
  for (const order of [
    [older, newer],
    [newer, older],
  ]) {
    const { subscriptions } = desiredSubscriptions(config, order);
    t.same(
      subscriptions.map((sub) => sub.name),
      ['from-file', 'older'],
    );
  }
});

t.test(
  'targets: file first, then resources; secrets this sidecar lacks turn Applied into SecretUnavailable',
  async (t) => {
    const { targets, verdicts } = desiredTargets(config, [
      resource('file-target', { baseUrl: 'https://other.example' }),
      resource('payments', { baseUrl: 'https://pay.example', headers: { authorization: { secretEnv: 'PAY' } } }),
      resource('broken', { baseUrl: 'ftp://nope' }),
    ]);
    t.same(
      targets.map(({ target, field }) => [target.name, field]),
      [
        ['file-target', 'targets[0]'],
        ['payments', 'spec'],
      ],
    );
    const final = withSecretProblems(
      verdicts,
      new Map([['payments', ['spec.headers.authorization.secretEnv: not set']]]),
    );
    t.match(
      final.map(({ reason }) => reason),
      ['NameConflict', 'SecretUnavailable', 'InvalidSpec'],
    );
  },
);
