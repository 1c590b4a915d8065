// A connector (undici's `connect` option) whose timeout is kept to a few ms.
// undici's own connect timeout runs on its coarse timers, with a tick of about
// half a second: a 200 ms one fired after 0.5-1 s. This one destroys the
// socket still connecting (TCP, then TLS) on a native timer, so undici fails
// the connection with UND_ERR_CONNECT_TIMEOUT and frees its slot in the pool at
// once; undici's own timer stays behind it, with the same value.
import type { Socket } from 'node:net';
import { type buildConnector, errors } from 'undici';

export function timedConnector(connect: buildConnector.connector, timeoutMs: number): buildConnector.connector {
  return (options, callback) => {
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    // undici's connectors return the socket they connect (its types say void); another connector keeps its own timeout.
    const socket = connect(options, (...args) => {
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      callback(...args);
    }) as unknown as Socket | undefined;
    if (socket !== undefined && !done) timer = setTimeout(giveUp, timeoutMs, socket, timeoutMs);
    return socket;
  };
}

function giveUp(socket: Socket, timeoutMs: number): void {
  socket.destroy(new errors.ConnectTimeoutError(`no connection within ${timeoutMs} ms`));
}
