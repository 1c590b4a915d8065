// The upstream of the outbound benchmark (bench/outbound.ts), in a process of
// its own: a node:http server answering every request 200 with a small JSON
// body. It tells its parent (over IPC) once it listens.
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const BODY = Buffer.from(JSON.stringify({ id: 'order-1', status: 'paid', amount: 4200, currency: 'EUR' }));

const server = createServer((request, response) => {
  request.resume();
  request.on('end', () => {
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length }).end(BODY);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => process.send?.({ type: 'listening' }));
process.on('message', (message) => {
  if ((message as { type: string }).type === 'stop') server.close(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
