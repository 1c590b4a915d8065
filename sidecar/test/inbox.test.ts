// Idempotent consumption against a real broker restart: the app answered 2xx,
// the connection died before the ack reached the broker, the broker hands the
// message out again, and the sidecar's inbox acks it without a second push.
import t from 'tap';
import { startApp } from './support/app-server.ts';
import { startInProcess, uniqueTopic } from './support/in-process.ts';
import { startRabbitNode } from './support/rabbitmq-node.ts';
import { until } from './support/wait.ts';

t.test('a redelivery of a message the app already processed is acked, not pushed again', async (t) => {
  const node = await startRabbitNode(t, 'outrigger-test-inbox');
  const app = await startApp(t);
  const topic = uniqueTopic('inbox');
  let brokerDown: Promise<void> | undefined;
  app.handle((_request, response) => {
    // The app does its work; before its 2xx reaches the sidecar, the broker goes away with the unacked message.
    brokerDown ??= node.stopApp();
    void brokerDown.then(() => response.writeHead(204).end());
  });
  const { sidecar, api } = await startInProcess(
    t,
    {
      appId: 'inbox',
      app: { port: app.port },
      broker: { url: node.url, reconnect: { initial: '100ms', max: '500ms' } },
      subscriptions: [{ name: 'orders', topic, route: '/orders' }],
    },
    { waitForBroker: true },
  );
  await until('consuming', () => sidecar.subscriptions.get('orders')?.consumer.state === 'consuming');
  const published = await fetch(`${api}/v1/publish/${topic}`, {
    method: 'POST',
    body: 'once',
    headers: { 'idempotency-key': 'order-1' },
  });
  t.equal(published.status, 202);
  await until('the push', () => brokerDown !== undefined);
  await brokerDown;
  await node.startApp();
  await until('consuming again', () => sidecar.subscriptions.get('orders')?.consumer.state === 'consuming', {
    timeoutMs: 15_000,
  });
  const duplicates = async () =>
    (await sidecar.metrics.deliveries.get()).values.find(
      (value) => value.labels.subscription === 'orders' && value.labels.outcome === 'duplicate',
    )?.value ?? 0;
  await until('the redelivery recognised', async () => (await duplicates()) === 1, { timeoutMs: 10_000 });
  t.equal(app.received.length, 1, 'the app got the message once');
  const left = await node.ctl('list_queues', '--quiet', '--no-table-headers', 'name', 'messages');
  t.match(left, new RegExp(`inbox:${topic.replaceAll('.', '\\.')}\\s+0`), 'and the broker has forgotten it');
});
