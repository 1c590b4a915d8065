// What a subscription creates on the broker: its queue and dead-letter queue,
// of the chosen type, there before any consumer runs; and a subscription whose
// queue cannot be declared fails alone, saying why.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { deleteQueuesAtEnd, inspect, startInProcess, uniqueTopic } from './support/in-process.ts';
import { statusOf, until } from './support/wait.ts';

const run = promisify(execFile);

/** name -> type of every queue on the shared broker whose name contains `part`. */
async function queueTypes(part: string): Promise<Record<string, string>> {
  const { stdout } = await run('rabbitmqctl', ['list_queues', '--quiet', '--no-table-headers', 'name', 'type'], {
    timeout: 30_000,
  });
  const types: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const [name, type] = line.trim().split(/\s+/);
    if (name?.includes(part) && type !== undefined) types[name] = type;
  }
  return types;
}

t.test('classic by default, quorum on request; the dead-letter queue always of the same type', async (t) => {
  const topic = uniqueTopic('types');
  deleteQueuesAtEnd(t, `classic:${topic}`, `quorum:${topic}`);
  const { sidecar, ops } = await startInProcess(t, {
    appId: 'types',
    subscriptions: [
      { name: 'plain', topic, mode: 'pull', group: 'classic' },
      { name: 'replicated', topic, mode: 'pull', group: 'quorum', queueType: 'quorum' },
    ],
  });
  await until('both consuming', () =>
    ['plain', 'replicated'].every((name) => sidecar.subscriptions.get(name)?.consumer.state === 'consuming'),
  );
  const metrics = await (await fetch(`${ops}/metrics`)).text();
  t.match(metrics, /^outrigger_subscription_consuming\{subscription="plain"\} 1$/m, 'consuming, in /metrics');
  t.same(await queueTypes(topic), {
    [`classic:${topic}`]: 'classic',
    [`classic:${topic}:dlq`]: 'classic',
    [`quorum:${topic}`]: 'quorum',
    [`quorum:${topic}:dlq`]: 'quorum',
  });
});

t.test('queues exist before any consumer: a message published while no sidecar runs waits', async (t) => {
  const topic = uniqueTopic('early');
  deleteQueuesAtEnd(t, `early:${topic}`);
  const channel = await inspect(t);
  const config = { appId: 'early', subscriptions: [{ name: 'jobs', topic, mode: 'pull' as const }] };
  const first = await startInProcess(t, config);
  await until('consuming', () => first.sidecar.subscriptions.get('jobs')?.consumer.state === 'consuming');
  await first.sidecar.stop();

  // Published by someone else while this app has no sidecar at all.
  channel.publish(topic, 'x', Buffer.from('waited'), { persistent: true, messageId: 'early-1' });
  const second = await startInProcess(t, config);
  const response = await fetch(`${second.api}/v1/subscriptions/jobs/pull`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ wait: '5s' }),
  });
  const { messages } = (await response.json()) as { messages: { id: string; dataBase64: string }[] };
  t.equal(messages.length, 1);
  t.equal(messages[0]?.id, 'early-1');
  t.equal(Buffer.from(messages[0]?.dataBase64 ?? '', 'base64').toString(), 'waited');
});

t.test('a queue that exists with another type fails its subscription alone, saying why', async (t) => {
  const topic = uniqueTopic('clash');
  const channel = await inspect(t);
  // Someone declared the group's queue as quorum before; this config says classic.
  await channel.assertQueue(`clash:${topic}`, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  deleteQueuesAtEnd(t, `clash:${topic}`, `fine:${topic}`);
  const { sidecar, api, ops } = await startInProcess(t, {
    appId: 'clash',
    subscriptions: [
      { name: 'broken', topic, mode: 'pull', group: 'clash' },
      { name: 'fine', topic, mode: 'pull', group: 'fine' },
    ],
  });
  await until('the clash reported', () => sidecar.subscriptions.get('broken')?.consumer.state === 'failed');
  await until('the other one consuming', () => sidecar.subscriptions.get('fine')?.consumer.state === 'consuming');
  const metadata = (await (await fetch(`${api}/v1/metadata`)).json()) as {
    subscriptions: { name: string; state: string; detail: string }[];
  };
  t.match(
    metadata.subscriptions.find((sub) => sub.name === 'broken'),
    {
      state: 'failed',
      detail: /PRECONDITION_FAILED.*x-queue-type/,
    },
  );
  t.equal(sidecar.broker.state, 'connected', 'the connection is unharmed');
  t.equal(await statusOf(`${ops}/readyz`), 503, 'not ready while a subscription cannot consume');
  const publish = await fetch(`${api}/v1/publish/${topic}`, { method: 'POST', body: 'still works' });
  t.equal(publish.status, 202, 'publishing still works');

  // Fixed by the operator: the subscription recovers by itself.
  await channel.deleteQueue(`clash:${topic}`);
  await until('consuming after the fix', () => sidecar.subscriptions.get('broken')?.consumer.state === 'consuming', {
    timeoutMs: 10_000,
  });
  t.equal(await statusOf(`${ops}/readyz`), 200, 'ready again');
});

t.test('the queue names are reported where an operator looks', async (t) => {
  const topic = uniqueTopic('names');
  deleteQueuesAtEnd(t, `names:${topic}`);
  const { api } = await startInProcess(t, {
    appId: 'names',
    subscriptions: [{ name: 'jobs', topic, mode: 'pull' }],
  });
  const metadata = (await (await fetch(`${api}/v1/metadata`)).json()) as {
    subscriptions: Record<string, unknown>[];
  };
  t.match(metadata.subscriptions[0], { queue: `names:${topic}`, deadLetterQueue: `names:${topic}:dlq` });
});
