// Publish through the sidecar (HTTP on loopback -> confirm channel) beside raw
// amqplib confirmed publishes to the same broker, same topic, same run, and
// beside the floor (bench/floor.ts: a bare node:http + amqplib bridge), so the
// table tells what any Node bridge costs here from what the sidecar adds.
//
// `make bench` runs it with the others; `node bench/publish.ts` alone.
import { connect } from 'amqplib';
// The root's undici (6.x), not the sidecar's (bench/undici.ts): here it is only the app's client, whose own cost is
// part of the sidecar's and the floor's latency against raw amqplib, and the runs in docs/benchmarks.md used this one.
import { Pool } from 'undici';
import { startFloor } from './floor-process.ts';
import { drive, interleaved, throughputRounds } from './load.ts';
import { percentiles, type Row, throughputRows } from './report.ts';
import { BROKER, spawnSidecar, untilReady } from './sidecar.ts';

const TOPIC = 'bench.publish';
const BODY = Buffer.from(JSON.stringify({ sensor: 'sensor-1', celsius: 21.5, at: '2026-01-01T00:00:00Z' }));

/** Latency blocks per side, their order rotated (load.ts, interleaved()). */
const LATENCY_BLOCKS = 6;

export async function benchPublish({ sequential = 3_000, concurrent = 20_000, runs = 3 } = {}): Promise<Row[]> {
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
  await untilReady(19601);
  const floor = await startFloor('publish', 19602, BROKER);
  const post = (port: number) => {
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 64, pipelining: 1 });
    const once = async () => {
      const response = await pool.request({
        method: 'POST',
        path: `/v1/publish/${TOPIC}`,
        headers: { 'content-type': 'application/json' },
        body: BODY,
      });
      await response.body.dump();
      if (response.statusCode !== 202) throw new Error(`answered ${response.statusCode}`);
    };
    return { once, close: () => pool.close() };
  };
  const viaSidecar = post(19600);
  const viaFloor = post(19602);

  try {
    // Warm every path, then measure latency in blocks whose order rotates, so drift and order hit both alike.
    await drive(2_000, 8, rawOnce);
    await drive(2_000, 8, viaSidecar.once);
    await drive(2_000, 8, viaFloor.once);
    const latencies = await interleaved({ raw: rawOnce, sidecar: viaSidecar.once }, sequential, LATENCY_BLOCKS);

    const rounds = await throughputRounds({
      runs,
      count: concurrent,
      direct: rawOnce,
      sidecar: { pid: sidecar.pid as number, once: viaSidecar.once },
      floor: { pid: floor.pid as number, once: viaFloor.once },
      between: async () => {
        await setup.purgeQueue(queue);
      },
    });

    const r = percentiles(latencies.raw);
    const s = percentiles(latencies.sidecar);
    return [
      {
        name: 'publish latency, 1 in flight (ms)',
        outrigger: s,
        direct: r,
        note: `${sequential} confirmed publishes each, in ${LATENCY_BLOCKS} blocks each, the order of the sides rotated from block to block; added p50 ${(s.p50 - r.p50).toFixed(3)} ms, p99 ${(s.p99 - r.p99).toFixed(3)} ms`,
        target: 'added p50 <= 0.3 ms, p99 <= 1.5 ms',
      },
      ...throughputRows({
        name: 'publish throughput, 64 in flight (msg/s)',
        floor: 'a bare node:http + amqplib bridge',
        direct: 'raw amqplib',
        unit: 'message',
        target: '>= 0.8x',
        runs,
        count: concurrent,
        rounds,
        extra: `sidecar peak RSS ${rounds.peakRss.all.toFixed(0)} MB, of it anonymous ${rounds.peakRss.anon.toFixed(0)} MB (target <= 100 MB)`,
      }),
    ];
  } finally {
    await viaSidecar.close();
    await viaFloor.close();
    floor.send({ type: 'stop' });
    sidecar.kill('SIGTERM');
    await new Promise((resolve) => sidecar.once('exit', resolve));
    await setup.purgeQueue(queue);
    await setup.deleteQueue(queue);
    await connection.close();
  }
}

if (import.meta.main) {
  const { table } = await import('./report.ts');
  console.log(table(await benchPublish()));
}
