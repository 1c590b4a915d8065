// The floor: the least a Node.js process can do to bridge HTTP to the broker
// or to an upstream, with none of the sidecar's checks, policies, metrics or
// framework. It runs beside the sidecar in the same benchmark so the table can
// say how much of the gap to the direct path any Node bridge pays on this
// machine (a second process and two more HTTP exchanges per call), and how
// much is the sidecar's own.
//
//   publish <port> <broker url>      POST /v1/publish/{topic} -> confirmed publish -> 202 {"id","routed"}
//   proxy <port> <upstream origin>   GET /v1/outbound/{target}/{path} -> undici -> the upstream's answer
//
// Forked by bench/publish.ts and bench/outbound.ts; it tells its parent (over IPC) once it listens.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'amqplib';
import { Pool } from './undici.ts';

const [mode, portArg, to] = process.argv.slice(2);
const port = Number(portArg);
if (to === undefined || (mode !== 'publish' && mode !== 'proxy')) {
  throw new Error('usage: node bench/floor.ts publish|proxy <port> <broker url | upstream origin>');
}

async function publishHandler(brokerUrl: string) {
  const channel = await (await connect(brokerUrl)).createConfirmChannel();
  return (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const topic = (request.url ?? '').slice('/v1/publish/'.length);
      const id = randomUUID();
      const properties = {
        messageId: id,
        contentType: request.headers['content-type'],
        persistent: true,
        mandatory: true,
      };
      channel.publish(topic, topic, Buffer.concat(chunks), properties, (error) => {
        const body = JSON.stringify({ id, routed: true });
        response.writeHead(error ? 503 : 202, { 'content-type': 'application/json', 'content-length': body.length });
        response.end(body);
      });
    });
  };
}

/** undici's dispatch API, the answer collected whole: no body stream (the sidecar does the same for small answers). */
function proxyHandler(origin: string) {
  const upstream = new Pool(origin, { connections: 64, pipelining: 1 });
  return (request: IncomingMessage, response: ServerResponse) => {
    const rest = (request.url ?? '').slice('/v1/outbound/'.length);
    const path = `/api${rest.slice(rest.indexOf('/'))}`;
    const chunks: Buffer[] = [];
    let status = 0;
    upstream.dispatch(
      { method: 'GET', path, headers: { accept: 'application/json' } },
      {
        onRequestStart() {},
        onResponseStart(_controller, statusCode) {
          status = statusCode;
        },
        onResponseData(_controller, chunk) {
          chunks.push(chunk);
        },
        onResponseEnd() {
          const body = Buffer.concat(chunks);
          response.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
          response.end(body);
        },
        onResponseError() {
          response.writeHead(502).end();
        },
      },
    );
  };
}

const handler = mode === 'publish' ? await publishHandler(to) : proxyHandler(to);
const server = createServer(handler);
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => process.send?.({ type: 'listening' }));
process.on('message', (message) => {
  if ((message as { type: string }).type === 'stop') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
