// The direct side of the push benchmark (bench/push.ts): what an app's own
// amqplib consumer would be, doing the sidecar's work per message. It takes
// the queue with the same prefetch, POSTs each body to the same app with the
// same concurrency over an undici pool like the sidecar's (same version and
// options), and acks on 2xx (nacks back to the queue otherwise). Its own
// process, like the sidecar, so both start equally cold and their CPU and RSS
// can be read from /proc.
//
//   node bench/push-direct.ts <broker url> <queue> <concurrency> <prefetch> <app port> <route>
// Tells its parent (IPC) "ready" once consuming; on SIGTERM stops taking
// messages, lets the pushes in flight finish and exits.
import { type ConsumeMessage, connect } from 'amqplib';
import { Pool } from './undici.ts';

const [url = '', queue = '', concurrencyArg, prefetchArg, appPort, route = '/'] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);

const connection = await connect(url);
const channel = await connection.createChannel();
await channel.prefetch(Number(prefetchArg));
const pool = new Pool(`http://127.0.0.1:${appPort}`, {
  connections: concurrency,
  keepAliveTimeout: 30_000,
  pipelining: 1,
});

let inFlight = 0;
const waiting: ConsumeMessage[] = [];

async function push(message: ConsumeMessage): Promise<void> {
  inFlight += 1;
  try {
    const response = await pool.request({
      method: 'POST',
      path: route,
      headers: {
        'content-type': message.properties.contentType ?? 'application/octet-stream',
        'ce-id': String(message.properties.messageId),
      },
      body: message.content,
    });
    await response.body.dump();
    if (response.statusCode >= 200 && response.statusCode < 300) channel.ack(message);
    else channel.nack(message, false, true);
  } catch {
    channel.nack(message, false, true);
  }
  inFlight -= 1;
  const next = waiting.shift();
  if (next !== undefined) void push(next);
}

const { consumerTag } = await channel.consume(queue, (message) => {
  if (message === null) return;
  if (inFlight < concurrency) void push(message);
  else waiting.push(message);
});
process.send?.('ready');

// Gone with the benchmark, even when it dies.
process.on('disconnect', () => process.exit(0));
process.once('SIGTERM', async () => {
  await channel.cancel(consumerTag);
  for (const message of waiting.splice(0)) channel.nack(message, false, true);
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  await channel.close();
  await connection.close();
  await pool.close();
  process.exit(0);
});
