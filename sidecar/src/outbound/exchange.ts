// One request to a target on undici's dispatch API. A small answer (a
// content-length up to WHOLE_LIMIT, or no body by its status or method) is
// collected whole, so the attempt ends with its last byte and the answer goes
// back to the app in one write; any other answer comes as a stream, paced by
// the app's reading. undici's request() builds a body stream, its promises
// and listeners for every answer, however small: bench/outbound.ts measures
// the difference (docs/benchmarks.md, "Outbound calls").
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { type Dispatcher, errors } from 'undici';
import type { UpstreamAnswer as Answer } from './attempt-result.ts';
import type { Hangup } from './hangup.ts';

/** Answers up to this size (by content-length) are read whole. */
const WHOLE_LIMIT = 64 * 1024;
/** A discarded answer stream is read this far to keep its connection; past it, the connection is dropped. */
const DISCARD_LIMIT = 128 * 1024;

export type AnswerBody = Buffer | AnswerStream;

/**
 * Sends one request. Resolves with the answer (whole, or as soon as its headers are in for a stream); rejects with
 * undici's or the socket's error, or UND_ERR_ABORTED once the call is cut (the app hangs up, or the deadline passes
 * before the answer's headers, or before the end of an answer read whole).
 *
 * `timeoutMs` bounds the wait for the answer's headers once the request is sent (its body too: an upload goes at the
 * app's pace), as undici's headers timeout does; past it, UND_ERR_HEADERS_TIMEOUT. undici runs that timeout on its
 * coarse timers (a tick of about half a second: a 200 ms one fired after 1 s), so the attempt keeps a timer of its
 * own; undici's stays, with the same value, behind it and for the gaps of a streamed body. Connecting has its own
 * (connect-timeout.ts).
 */
export function exchange(
  pool: Dispatcher,
  options: Dispatcher.DispatchOptions,
  hangup: Hangup,
  timeoutMs: number,
): Promise<Answer> {
  // Not sent at all: dispatched, it would be aborted as it is written, and its kept-alive connection with it.
  if (hangup.cut) return Promise.reject(new errors.RequestAbortedError());
  return new Promise((resolve, reject) => {
    pool.dispatch(options, new AnswerHandler(options, hangup, timeoutMs, resolve, reject));
  });
}

/** Drops an answer no one will read (the app went away): a stream still arriving aborts its request. */
export function drop(body: AnswerBody): void {
  if (!Buffer.isBuffer(body)) body.destroy();
}

/**
 * Drops an answer that will not be passed on (a retried or redirected one), keeping its connection when it is short.
 * Reading it stops when `hangup` cuts the call (its deadline passes), and the answer is dropped.
 */
export async function discard(body: AnswerBody, hangup?: Hangup): Promise<void> {
  if (!Buffer.isBuffer(body)) {
    if (hangup?.cut) {
      body.destroy();
      return;
    }
    const stop = () => body.destroy();
    hangup?.watch(stop);
    let size = 0;
    try {
      for await (const chunk of body) {
        size += (chunk as Buffer).length;
        if (size > DISCARD_LIMIT) return; // leaving the loop destroys the stream, and the connection with it
      }
    } catch {
      return; // the answer failed on its own, or was cut: nothing left to drop
    } finally {
      hangup?.unwatch(stop);
    }
  }
  // undici frees a connection one turn of the event loop after its answer ends (a whole one
  // too): sent before that, the next request (a redirect's) would open a connection of its own.
  await new Promise((resolve) => setImmediate(resolve));
}

/** An answer's body as it arrives; destroying it before its end aborts the request. */
class AnswerStream extends Readable {
  /** The body arrived in full, or failed: nothing to abort. */
  settled = false;

  private readonly controller: Dispatcher.DispatchController;

  constructor(controller: Dispatcher.DispatchController) {
    super();
    this.controller = controller;
    // An answer waiting out a back-off before it is discarded has no reader: its failure
    // (the target hanging up, the app going away) must not be an uncaught 'error'.
    // Readers (pipeline, for await) see errors through listeners of their own.
    this.on('error', noop);
  }

  override _read(): void {
    this.controller.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.settled) {
      this.settled = true;
      this.controller.abort(error ?? new errors.RequestAbortedError());
    }
    callback(error);
  }
}

const hasNoBody = (method: string, status: number) => method === 'HEAD' || status === 204 || status === 304;

class AnswerHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  /** Collecting a whole answer. */
  private chunks: Buffer[] | undefined;
  private stream: AnswerStream | undefined;
  private readonly options: Dispatcher.DispatchOptions;
  private readonly hangup: Hangup;
  private readonly resolve: (answer: Answer) => void;
  private readonly reject: (error: Error) => void;
  private readonly timeoutMs: number;
  /** From the request sent until the answer's headers: the attempt's timeout. */
  private timer: NodeJS.Timeout | undefined;

  constructor(
    options: Dispatcher.DispatchOptions,
    hangup: Hangup,
    timeoutMs: number,
    resolve: (answer: Answer) => void,
    reject: (error: Error) => void,
  ) {
    this.options = options;
    this.hangup = hangup;
    this.resolve = resolve;
    this.reject = reject;
    this.timeoutMs = timeoutMs;
    hangup.watch(this.onAbort);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.hangup.cut) {
      controller.abort(new errors.RequestAbortedError());
      return;
    }
    this.controller = controller;
  }

  /** The request, body and all, is written: the wait for the answer's headers begins. */
  onRequestSent(): void {
    if (this.status === 0) this.timer = setTimeout(timedOut, this.timeoutMs, this);
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    if (status < 200) return; // 1xx: the answer is still to come
    this.stopTimer();
    this.status = status;
    this.headers = headers;
    if (hasNoBody(this.options.method, status) || Number(headers['content-length']) <= WHOLE_LIMIT) {
      this.chunks = [];
      return;
    }
    this.stream = new AnswerStream(controller);
    this.resolve({ kind: 'answer', status, headers, body: this.stream });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.chunks !== undefined) this.chunks.push(chunk);
    else if (this.stream !== undefined && !this.stream.push(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.stopListening();
    const chunks = this.chunks;
    if (chunks !== undefined) {
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      this.resolve({ kind: 'answer', status: this.status, headers: this.headers, body });
      return;
    }
    if (this.stream !== undefined) {
      this.stream.settled = true;
      this.stream.push(null);
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.stopTimer();
    this.stopListening();
    const stream = this.stream;
    if (stream === undefined) this.reject(error);
    else {
      stream.settled = true;
      stream.destroy(error);
    }
    this.closeBody(error); // as undici's request() does: the request body will not be read to its end
  }

  private readonly onAbort = (): void => {
    const reason = new errors.RequestAbortedError();
    // A streaming answer's headers are in: past them only the app going away stops it, not the deadline.
    if (this.stream !== undefined) {
      if (this.hangup.happened) this.stream.destroy(reason);
    } else this.end(reason);
  };

  /** The attempt's timeout passed before the answer's headers. */
  onTimeout(): void {
    this.timer = undefined;
    this.end(new errors.HeadersTimeoutError());
  }

  /** Ends the attempt before its answer's headers: aborted when under way, else (not started) rejected now. */
  private end(reason: Error): void {
    if (this.controller !== undefined) {
      this.controller.abort(reason);
      return;
    }
    // Not started: still waiting for a connection, or connecting. The attempt ends now; undici has no way to
    // take the request out of its queue, so onRequestStart aborts it when its turn comes. A body that streams
    // is closed now, so that the rest of the app's body is dropped (request-body.ts).
    this.stopTimer();
    this.stopListening();
    this.closeBody(reason);
    this.reject(reason);
  }

  private stopTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** Closes a request body that streams: it will not be sent, or not to its end. */
  private closeBody(reason: Error): void {
    const body = this.options.body;
    if (body instanceof Readable && !body.destroyed) body.on('error', noop).destroy(reason);
  }

  private stopListening(): void {
    this.hangup.unwatch(this.onAbort);
  }
}

function noop(): void {}

/** setTimeout's callback, with the handler as its argument: no closure per attempt. */
function timedOut(handler: AnswerHandler): void {
  handler.onTimeout();
}
