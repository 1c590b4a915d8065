// The app of the push benchmark (bench/push.ts), in a process of its own: a
// node:http server that reads each POSTed JSON message, answers 204 and
// notes when it arrived. The parent (over IPC) arms it to expect `count`
// messages and hears back at the first one and, once they are all in, when
// the first and the last came and how long each took from its publish
// (`sentAt`, monotonic ms) to here.
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
/** Monotonic milliseconds, the same clock in every process on the machine. */
const now = () => Number(process.hrtime.bigint()) / 1e6;

let expected = Number.POSITIVE_INFINITY;
let count = 0;
let first = 0;
let last = 0;
let latencies: number[] = [];
const seen = new Set<number>();

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const at = now();
    const message = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { seq: number; sentAt: number };
    response.writeHead(204).end();
    if (count === 0) {
      first = at;
      process.send?.({ type: 'first' });
    }
    last = at;
    count += 1;
    seen.add(message.seq);
    latencies.push(at - message.sentAt);
    if (count === expected) {
      process.send?.({ type: 'done', count, unique: seen.size, first, last, latencies });
      expected = Number.POSITIVE_INFINITY;
    }
  });
});
server.keepAliveTimeout = 60_000;

process.on('message', (message: { type: 'expect'; count: number } | { type: 'stop' }) => {
  if (message.type === 'stop') {
    server.closeAllConnections();
    server.close(() => process.exit(0));
    return;
  }
  count = 0;
  latencies = [];
  seen.clear();
  expected = message.count;
  process.send?.({ type: 'armed' });
});

// Gone with the benchmark, even when it dies.
process.on('disconnect', () => process.exit(0));
server.listen(port, '127.0.0.1', () => process.send?.({ type: 'listening' }));
