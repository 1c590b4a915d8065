// Delayed delivery: how late 10,000 messages with delays of 1-30 s arrive when
// they wait in the broker's delay cascade, published through the sidecar
// (`?delay=`) and taken by a plain amqplib consumer on a queue bound to the
// topic. Beside it, the same delays held by timers in a Node process: the
// lateness of keeping messages in memory (which a crash loses), as a floor.
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'amqplib';
import { Pool } from 'undici';
import { percentiles, type Row } from './report.ts';
import { BROKER, spawnSidecar, untilReady } from './sidecar.ts';

const TOPIC = 'bench.delay';
const MIN_MS = 1_000;
const MAX_MS = 30_000;

export async function benchDelay({ count = 10_000 } = {}): Promise<Row[]> {
  const connection = await connect(BROKER);
  const channel = await connection.createChannel();
  await channel.assertExchange(TOPIC, 'topic', { durable: true });
  const { queue } = await channel.assertQueue('bench.delay.sink', { durable: true });
  await channel.bindQueue(queue, TOPIC, '#');
  await channel.purgeQueue(queue);
  const sidecar = spawnSidecar({ http: 19630, ops: 19631 });
  await untilReady(19631);

  const late: number[] = [];
  let early = 0;
  await channel.consume(queue, (message) => {
    if (message === null) return;
    const { due } = JSON.parse(message.content.toString()) as { due: number };
    const lateness = Date.now() - due;
    if (lateness < 0) early += 1;
    late.push(lateness);
    channel.ack(message);
  });

  const timers: number[] = [];
  const pool = new Pool('http://127.0.0.1:19630', { connections: 32, pipelining: 1 });
  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < count) {
        next += 1;
        const delayMs = MIN_MS + Math.floor(Math.random() * (MAX_MS - MIN_MS + 1));
        const due = Date.now() + delayMs;
        // The floor: the same delay held by a timer in this process.
        setTimeout(() => timers.push(Date.now() - due), delayMs);
        const response = await pool.request({
          method: 'POST',
          path: `/v1/publish/${TOPIC}?delay=${delayMs}ms`,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ due }),
        });
        await response.body.dump();
        if (response.statusCode !== 202) throw new Error(`sidecar answered ${response.statusCode}`);
      }
    }),
  );
  const publishSeconds = (Date.now() - started) / 1000;
  const deadline = Date.now() + MAX_MS + 30_000;
  while ((late.length < count || timers.length < count) && Date.now() < deadline) await sleep(200);

  await pool.close();
  sidecar.kill('SIGTERM');
  await new Promise((resolve) => sidecar.once('exit', resolve));
  await channel.deleteQueue(queue);
  await connection.close();

  const lost = count - late.length;
  const inMs = (values: number[]) => percentiles(values);
  return [
    {
      name: 'delayed delivery lateness, 1-30 s delays (ms)',
      outrigger: inMs(late),
      direct: inMs(timers),
      note: `${count} messages published in ${publishSeconds.toFixed(1)} s with random delays (ms) through the sidecar, taken by an amqplib consumer; direct = the same delays as timers in one Node process (in memory: lost on a crash); ${early} early, ${lost} missing; max ${Math.max(...late)} ms. Delays round up to whole seconds, so up to 1 s of lateness is by design`,
      target: 'p99 <= 1500 ms',
      ratio: `+${(percentiles(late).p99 - percentiles(timers).p99).toFixed(0)} ms at p99`,
    },
  ];
}
