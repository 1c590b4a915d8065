// Publish through the sidecar (HTTP on loopback -> confirm channel) beside raw
// amqplib confirmed publishes to the same broker, same topic, same run.
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'amqplib';
import { Pool } from 'undici';
import { drive, usage } from './load.ts';
import { percentiles, type Row } from './report.ts';
import { BROKER, spawnSidecar } from './sidecar.ts';

const TOPIC = 'bench.publish';
const BODY = Buffer.from(JSON.stringify({ sensor: 'sensor-1', celsius: 21.5, at: '2026-01-01T00:00:00Z' }));

export async function benchPublish({ sequential = 3_000, concurrent = 30_000 } = {}): Promise<Row[]> {
  const connection = await connect(BROKER);
  const setup = await connection.createChannel();
  await setup.assertExchange(TOPIC, 'topic', { durable: true });
  const { queue } = await setup.assertQueue('bench.publish.sink', { durable: true });
  await setup.bindQueue(queue, TOPIC, '#');
  await setup.purgeQueue(queue);

  const raw = await connection.createConfirmChannel();
  const rawOnce = () =>
    new Promise<void>((resolve, reject) =>
      raw.publish(
        TOPIC,
        TOPIC,
        BODY,
        { persistent: true, mandatory: true, contentType: 'application/json' },
        (error) => (error ? reject(error) : resolve()),
      ),
    );

  const sidecar = spawnSidecar({ http: 19600, ops: 19601 });
  for (
    let i = 0;
    i < 500 &&
    (await fetch('http://127.0.0.1:19601/readyz').then(
      (r) => r.status,
      () => 0,
    )) !== 200;
    i++
  )
    await sleep(10);
  const pool = new Pool('http://127.0.0.1:19600', { connections: 64, pipelining: 1 });
  const viaSidecar = async () => {
    const response = await pool.request({
      method: 'POST',
      path: `/v1/publish/${TOPIC}`,
      headers: { 'content-type': 'application/json' },
      body: BODY,
    });
    await response.body.dump();
    if (response.statusCode !== 202) throw new Error(`sidecar answered ${response.statusCode}`);
  };

  // Warm both paths, then measure them interleaved so drift hits both alike.
  await drive(500, 8, rawOnce);
  await drive(500, 8, viaSidecar);
  const rawSeq = await drive(sequential, 1, rawOnce);
  const sidecarSeq = await drive(sequential, 1, viaSidecar);
  const rawPar = await drive(concurrent, 64, rawOnce);
  const peakRss = { all: 0, anon: 0 };
  const sampler = setInterval(() => {
    const now = usage(sidecar.pid as number);
    peakRss.all = Math.max(peakRss.all, now.rssMb);
    peakRss.anon = Math.max(peakRss.anon, now.anonMb);
  }, 100);
  const sidecarPar = await drive(concurrent, 64, viaSidecar);
  clearInterval(sampler);

  await pool.close();
  sidecar.kill('SIGTERM');
  await new Promise((resolve) => sidecar.once('exit', resolve));
  await setup.purgeQueue(queue);
  await setup.deleteQueue(queue);
  await connection.close();

  const r = percentiles(rawSeq.latencies);
  const s = percentiles(sidecarSeq.latencies);
  return [
    {
      name: 'publish latency, 1 in flight (ms)',
      outrigger: s,
      direct: r,
      note: `${sequential} confirmed publishes each; added p50 ${(s.p50 - r.p50).toFixed(3)} ms, p99 ${(s.p99 - r.p99).toFixed(3)} ms`,
      target: 'added p50 <= 0.3 ms, p99 <= 1.5 ms',
    },
    {
      name: 'publish throughput, 64 in flight (msg/s)',
      outrigger: { p50: sidecarPar.rate },
      direct: { p50: rawPar.rate },
      note: `${concurrent} messages each; sidecar peak RSS ${peakRss.all.toFixed(0)} MB, of it anonymous ${peakRss.anon.toFixed(0)} MB (target <= 100 MB)`,
      target: '>= 0.8x',
    },
  ];
}
