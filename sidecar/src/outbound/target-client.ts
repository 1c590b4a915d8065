// One outbound target: a kept-alive undici pool and the target's policies.
// A call is refused at once while the circuit is open; otherwise it goes
// bulkhead (whole call, until the answer has streamed back) -> retries (our
// loop: idempotency, retry.on, back-off, retry-after, budget) -> circuit
// breaker (each attempt) -> timeout (each attempt). cockatiel provides the
// breaker (but not its sampling option: sampling-breaker.ts says why); the
// bulkhead is ours (bulkhead.ts says why), and so are the retries, because
// cockatiel's retry policy has no budget and no retry-after. The per-attempt timeout (connect, then the answer's
// headers, then each gap in its body) is a plain timer for each of the first two (connect-timeout.ts, exchange.ts;
// undici's own run on coarse timers) and undici's for the gaps, rather than cockatiel's TimeoutPolicy: that one
// derives two AbortControllers, their listeners and a race per attempt, which halved throughput in
// bench/outbound.ts (the same finding as the push client, delivery/app-client.ts). A call's deadline
// (targets[].deadline, or the app's outrigger-timeout) is one timer on its
// Hangup, armed only when there is one: it cuts the call as the app hanging
// up does, in the bulkhead's queue or on the wire, until the answer's
// headers go back.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { context, trace } from '@opentelemetry/api';
import {
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhenResult,
  isBrokenCircuitError,
} from 'cockatiel';
import { buildConnector, type Dispatcher, Pool } from 'undici';
import { isProblemError, ProblemError } from '../api/problems.ts';
import type { Target } from '../config/schema.ts';
import type { CircuitBreaker } from '../config/target.ts';
import { backoffMs, parseRetryAfter } from '../delivery/backoff.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { endHttpSpan, type HttpPeer, httpPeer, startHttpClient } from '../telemetry/spans.ts';
import { tracingActive } from '../telemetry/tracing.ts';
import {
  type AttemptResult,
  CallAborted,
  DEADLINE_PASSED,
  describeFailure,
  failureOf,
  isBreakerFailure,
  outcomeOf,
} from './attempt-result.ts';
import { Bulkhead } from './bulkhead.ts';
import { timedConnector } from './connect-timeout.ts';
import type { EgressProxy } from './egress-proxy.ts';
import { type AnswerBody, discard, drop, exchange } from './exchange.ts';
import { type DeadlineSetter, Hangup } from './hangup.ts';
import { type HeaderMap, requestHeaders, responseHeaders } from './headers.ts';
import { tunnelConnector } from './proxy-tunnel.ts';
import { hasBody, NO_BODY, type RequestBody, readRequestBody } from './request-body.ts';
import { RetryBudget } from './retry-budget.ts';
import { SamplingBreaker } from './sampling-breaker.ts';
import type { TargetHeaders } from './target-headers.ts';
import { basePathOf, type PathCheck, redirectPath, upstreamPath } from './target-path.ts';
import type { TargetTls } from './target-tls.ts';

/** RFC 9110 §9.2.2; TRACE is not routed at all (it would echo the secret headers). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
/** The methods the proxy forwards (and so the metrics' method labels). TRACE is not: the target would echo the secret headers back. */
export const OUTBOUND_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
/** Told to a call refused by a full bulkhead, or while a half-open trial is in flight. */
const BUSY_RETRY_AFTER_S = 1;

export type CircuitStateName = 'closed' | 'half-open' | 'open';

export interface OutboundCall {
  method: string;
  /** The upstream path and query, from pathFor(). */
  path: string;
  headers: IncomingHttpHeaders;
  /** The app's request, read as the body. */
  request: IncomingMessage;
  /** Happens when the app goes away, or the call's deadline passes. */
  hangup: Hangup;
  /** The app's deadline for this call (outrigger-timeout), in ms; the target's own deadline, if shorter, wins. */
  deadline?: number | undefined;
}

export interface OutboundAnswer {
  status: number;
  headers: HeaderMap;
  /** Whole (a small answer, or none), or streaming as it arrives. */
  body: AnswerBody;
  /** Call once the answer has gone back to the app (or the app went away): frees the bulkhead slot. */
  end(): void;
}

export interface TargetClientDeps {
  metrics: Metrics;
  logger: Logger;
  headers: TargetHeaders;
  /** An https:// target's TLS settings, when it has any. */
  tls?: TargetTls | undefined;
  /** The egress proxy the target is reached through, when the environment sets one for it. */
  proxy?: EgressProxy | undefined;
}

const OPEN = Symbol('circuit open');

/** An attempt not sent: the call was cut before it (sender() says when). It is not an attempt. */
class NotSent {}

/** An attempt the breaker does not count (send() says why), thrown through it. */
class Uncounted {
  readonly result: AttemptResult;

  constructor(result: AttemptResult) {
    this.result = result;
  }
}

/**
 * The call was cut (its deadline passed, or its app left) during a half-open trial, which goes on without it
 * (send() says why): the call ends now, and the trial keeps its bulkhead slot until it ends.
 */
class TrialGoesOn {
  readonly trial: Promise<AttemptResult>;
  readonly attempts: number;

  constructor(trial: Promise<AttemptResult>, attempts: number) {
    this.trial = trial;
    this.attempts = attempts;
  }
}

export class TargetClient {
  readonly name: string;
  /** The target as configured: a changed one gets a new client. */
  readonly target: Target;
  private readonly base: URL;
  private readonly basePath: string;
  private readonly host: string;
  private readonly peer: HttpPeer;
  private readonly pool: Pool;
  /** The egress proxy, when calls go through one. */
  readonly proxy: EgressProxy | undefined;
  /**
   * Before each path, for an http:// target behind a proxy: its origin, so the
   * request line is in absolute form (`GET http://host:port/path`), as the proxy forwards it.
   */
  private readonly pathPrefix: string;
  /**
   * Forwarded over plain http, the proxy reads its credentials from each request (the app's own proxy-* are gone):
   * the proxy's Proxy-Authorization, when it has credentials.
   */
  private readonly proxyAuthorization: string | undefined;
  /** The name TLS asks for and checks, when `tls.serverName` sets one. */
  private readonly servername: string | undefined;
  private readonly bulkhead: Bulkhead;
  private readonly breaker: CircuitBreakerPolicy;
  private readonly budget: RetryBudget;
  private readonly retryOn: Set<number | string>;
  private readonly headers: TargetHeaders;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private openedAt = 0;
  /** Set by retire(): resolves it once the pool is closed. */
  private retired: (() => void) | undefined;

  constructor(target: Target, deps: TargetClientDeps) {
    this.target = target;
    this.name = target.name;
    this.base = new URL(target.baseUrl);
    this.basePath = basePathOf(this.base);
    this.host = this.base.host;
    this.peer = httpPeer(this.base.origin);
    this.headers = deps.headers;
    this.metrics = deps.metrics;
    this.logger = deps.logger;
    const proxy = deps.proxy;
    this.proxy = proxy;
    // Tunneled (https), the pool's connections are to the target through the proxy; forwarded (http), to the proxy.
    const forwarded = proxy !== undefined && this.base.protocol === 'http:';
    this.pathPrefix = forwarded ? this.base.origin : '';
    this.proxyAuthorization = forwarded ? proxy.authorization : undefined;
    // Tunneled, TLS on the tunnel has the timeout again (the tunnel has its own).
    let connect = timedConnector(deps.tls?.connector ?? buildConnector({ timeout: target.timeout }), target.timeout);
    if (proxy !== undefined && !forwarded) connect = tunnelConnector(proxy, connect, target.timeout);
    this.pool = new Pool(forwarded ? `http://${proxy.address}` : this.base.origin, {
      connections: target.bulkhead.maxConcurrent,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connect,
      headersTimeout: target.timeout,
      bodyTimeout: target.timeout,
    });
    this.servername = deps.tls?.serverName;
    this.bulkhead = new Bulkhead(target.bulkhead.maxConcurrent, target.bulkhead.maxQueue);
    this.breaker = circuitBreaker(
      handleWhenResult((result) => isBreakerFailure(result as AttemptResult)),
      {
        halfOpenAfter: target.circuitBreaker.halfOpenAfter,
        breaker: breakerOf(target.circuitBreaker),
      },
    );
    this.breaker.onStateChange((state) => this.onCircuitChange(state));
    this.budget = new RetryBudget(target.budget.ratio, target.budget.minPerSecond);
    this.retryOn = new Set(target.retry.on);
  }

  /** The circuit as a call would find it now (open becomes half-open with time alone). */
  get circuitState(): CircuitStateName {
    switch (this.breaker.state) {
      case CircuitState.Closed:
        return 'closed';
      case CircuitState.HalfOpen:
        return 'half-open';
      default:
        // cockatiel moves to half-open on the first call after the wait; until then the next call is the trial.
        return this.msUntilHalfOpen() === 0 ? 'half-open' : 'open';
    }
  }

  /** The upstream path for what followed `/v1/outbound/{name}` (raw), or why it is refused. */
  pathFor(rest: string, query: string | undefined): PathCheck {
    return upstreamPath(this.basePath, rest, query);
  }

  /**
   * The call's answer (any status the target gave), or a ProblemError
   * (UPSTREAM_TIMEOUT when its deadline passed first), or CallAborted when
   * the app went away first. The answer holds its bulkhead slot until end()
   * is called; its deadline no longer applies once it is returned.
   */
  async call(call: OutboundCall): Promise<OutboundAnswer> {
    const started = performance.now();
    const { method, hangup } = call;
    try {
      this.refuseWhileOpen();
      const deadline = this.deadlineOf(call);
      if (deadline !== undefined) hangup.expireIn(deadline.ms, deadline.setBy);
      if (!this.bulkhead.tryTake()) await this.queue(call);
    } catch (error) {
      hangup.disarm();
      this.recordRefusal(method, error, started);
      throw error;
    }
    let answer: Omit<OutboundAnswer, 'end'>;
    try {
      const { result, attempts } = await this.attempts(call);
      answer = this.answer(result, attempts, call);
    } catch (error) {
      hangup.disarm();
      let failed = error;
      if (error instanceof TrialGoesOn) {
        void error.trial.then(dropAnswer, noop).then(() => this.done());
        failed = hangup.happened ? new CallAborted() : this.failed(DEADLINE_PASSED, error.attempts, call);
      } else this.done();
      this.recordRefusal(method, failed, started);
      throw failed;
    }
    // The answer's headers go back now: a streamed body is paced by the per-gap timeout alone.
    hangup.disarm();
    let ended = false;
    return {
      ...answer,
      end: () => {
        if (ended) return;
        ended = true;
        this.record(method, String(answer.status), started);
        this.done();
      },
    };
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  /**
   * Hot reload replaced or removed the target: no new calls come here, and the pool
   * closes once the calls already taken are over (waiting in the bulkhead, retrying,
   * streaming their answers); closed at once, they would fail without being sent.
   */
  retire(): Promise<void> {
    return new Promise((resolve) => {
      this.retired = resolve;
      this.closeIfRetiredAndIdle();
    });
  }

  /** Once retired, the pool closes when no call holds or waits for a slot any more. */
  private closeIfRetiredAndIdle(): void {
    if (this.bulkhead.size > 0) return;
    const retired = this.retired;
    this.retired = undefined;
    if (retired !== undefined) void this.pool.close().then(retired, retired);
  }

  /**
   * Waits in the bulkhead's queue: BULKHEAD_FULL when it is full, CallAborted when the app goes away,
   * UPSTREAM_TIMEOUT when the deadline passes first.
   */
  private async queue(call: OutboundCall): Promise<void> {
    const { hangup } = call;
    const waiting = this.bulkhead.wait(hangup.signal);
    if (waiting === undefined) {
      this.metrics.outboundRejected.inc({ target: this.name, reason: 'bulkhead' });
      throw new ProblemError(
        'BULKHEAD_FULL',
        `target "${this.name}" has ${this.target.bulkhead.maxConcurrent} calls in flight and ${this.target.bulkhead.maxQueue} waiting`,
        { headers: { 'retry-after': String(BUSY_RETRY_AFTER_S), 'outrigger-attempts': '0' } },
      );
    }
    try {
      await waiting;
    } catch (error) {
      this.closeIfRetiredAndIdle();
      if (hangup.expired) throw this.deadlinePassed(call, 'while waiting for a slot', 0);
      throw error;
    }
  }

  /** The call's deadline: the smaller of the target's and the app's (outrigger-timeout; the target's on a tie). */
  private deadlineOf(call: OutboundCall): { ms: number; setBy: DeadlineSetter } | undefined {
    const configured = this.target.deadline;
    const asked = call.deadline;
    if (asked !== undefined && (configured === undefined || asked < configured)) return { ms: asked, setBy: 'app' };
    return configured === undefined ? undefined : { ms: configured, setBy: 'target' };
  }

  /** The deadline, for details: its length and, when the app set it, the header it came from. */
  private describeDeadline(call: OutboundCall): string {
    const { deadline, deadlineSetBy } = call.hangup;
    return `the call's deadline of ${deadline} ms${deadlineSetBy === 'app' ? ' (outrigger-timeout)' : ''}`;
  }

  /** UPSTREAM_TIMEOUT for a call whose deadline passed `when`, outside an attempt. */
  private deadlinePassed(call: OutboundCall, when: string, attempts: number): ProblemError {
    return this.unanswered('UPSTREAM_TIMEOUT', `${this.describeDeadline(call)} passed ${when}`, attempts);
  }

  /** The call was cut as it dropped the previous answer, before attempt `attempt` was sent. */
  private notSent(call: OutboundCall, attempt: number): ProblemError | CallAborted {
    if (!call.hangup.expired) return new CallAborted();
    return this.deadlinePassed(call, `before attempt ${attempt} was sent`, attempt - 1);
  }

  /** The problem of a call that got no answer, with the attempts it made (in `detail` and `outrigger-attempts`). */
  private unanswered(code: 'UPSTREAM_TIMEOUT' | 'UPSTREAM_UNREACHABLE', what: string, attempts: number): ProblemError {
    const tries = attempts === 1 ? '1 attempt' : `${attempts} attempts`;
    return new ProblemError(code, `target "${this.name}": ${what} (${tries})`, {
      headers: { 'outrigger-attempts': String(attempts) },
    });
  }

  /** The call is over (answered, failed or abandoned): its slot goes to the next in line. */
  private done(): void {
    this.bulkhead.release();
    this.closeIfRetiredAndIdle();
  }

  /** Attempts until one is final: not retryable, out of attempts, out of budget, or the breaker opened. */
  private async attempts(call: OutboundCall): Promise<{ result: AttemptResult; attempts: number }> {
    let body = NO_BODY;
    if (hasBody(call.request)) {
      try {
        body = await readRequestBody(call.request, call.hangup);
      } catch {
        // Cut while the body arrived, or the app's request broke off (its connection is gone).
        if (call.hangup.expired) throw this.deadlinePassed(call, "while the app's request body arrived", 0);
        throw new CallAborted();
      }
    }
    try {
      return await this.attemptsWith(call, body);
    } catch (error) {
      // A body that streams and was never sent (the circuit refused the first attempt, the call was cut before it):
      // closed, the rest of the app's body is dropped (request-body.ts). A trial that goes on keeps it.
      if (body.kind === 'stream' && !(error instanceof TrialGoesOn)) body.stream.destroy();
      throw error;
    }
  }

  private async attemptsWith(
    call: OutboundCall,
    body: RequestBody,
  ): Promise<{ result: AttemptResult; attempts: number }> {
    const headers = requestHeaders(call.headers, this.host, this.headers.current());
    if (this.proxyAuthorization !== undefined) headers['proxy-authorization'] = this.proxyAuthorization;
    if (body.kind === 'buffered') delete headers['content-length'];
    const retryable =
      body.kind !== 'stream' && (IDEMPOTENT.has(call.method) || call.headers['idempotency-key'] !== undefined);
    const { maxAttempts } = this.target.retry;
    this.budget.recordCall();
    let last: AttemptResult | undefined;
    for (let attempt = 1; ; attempt++) {
      // The deadline passed before this attempt, as a back-off ended.
      if (call.hangup.expired) {
        if (last !== undefined) return { result: last, attempts: attempt - 1 };
        throw this.deadlinePassed(call, 'before the call was sent', 0);
      }
      // Each attempt goes through the breaker; a half-open one lets its trial through, and
      // the other calls fail fast instead of queueing behind it.
      let result: AttemptResult | typeof OPEN = OPEN;
      if (this.breaker.state !== CircuitState.HalfOpen) {
        // execute() picks its branch from the state as it is now: closed runs the attempt; open refuses
        // it or, once halfOpenAfter has passed, makes it the half-open trial.
        const trial = this.breaker.state !== CircuitState.Closed;
        try {
          const progress = trial ? { sent: false } : undefined;
          const sent = this.breaker.execute(this.sender(call, headers, body, attempt, last, trial, progress));
          result =
            progress !== undefined
              ? await unlessCut(sent, call.hangup, () => (progress.sent ? attempt : attempt - 1))
              : await sent;
        } catch (error) {
          if (error instanceof Uncounted) result = error.result;
          else if (error instanceof NotSent) throw this.notSent(call, attempt);
          else if (!isBrokenCircuitError(error)) throw error;
        }
      }
      if (result === OPEN) {
        if (last !== undefined) return { result: last, attempts: attempt - 1 };
        throw this.circuitOpen();
      }
      last = result;
      if (!retryable || attempt >= maxAttempts || call.hangup.cut || !this.isRetried(result)) {
        return { result, attempts: attempt };
      }
      const delay = this.delayAfter(attempt, result);
      // A back-off that would end at or past the deadline is not waited out: the call ends with what it has.
      if (delay === undefined || call.hangup.passesDeadline(delay)) return { result, attempts: attempt };
      if (!this.budget.tryRetry()) {
        this.metrics.outboundBudgetExhausted.inc({ target: this.name });
        trace.getActiveSpan()?.addEvent('outrigger.retry_budget_exhausted', { 'outrigger.target': this.name });
        return { result, attempts: attempt };
      }
      trace.getActiveSpan()?.addEvent('outrigger.retry', {
        'outrigger.target': this.name,
        'http.request.resend_count': attempt,
        'outrigger.retry.delay_ms': delay,
        'outrigger.retry.reason': outcomeOf(result),
      });
      try {
        await sleep(delay, undefined, { signal: call.hangup.signal });
      } catch {
        return { result, attempts: attempt };
      }
    }
  }

  private isRetried(result: AttemptResult): boolean {
    return this.retryOn.has(result.kind === 'answer' ? result.status : result.failure);
  }

  /** The back-off before the next attempt; an upstream's retry-after wins, unless it is longer than retry.max. */
  private delayAfter(attempt: number, result: AttemptResult): number | undefined {
    const { initial, max, jitter } = this.target.retry;
    if (result.kind === 'answer') {
      const asked = parseRetryAfter(result.headers['retry-after']);
      if (asked !== undefined) return asked > max ? undefined : asked;
    }
    return backoffMs({ initial, max, multiplier: 2, jitter: jitter === 'full' ? 1 : jitter }, attempt);
  }

  /** What the breaker runs for one attempt. */
  private sender(
    call: OutboundCall,
    headers: HeaderMap,
    body: RequestBody,
    attempt: number,
    previous: AttemptResult | undefined,
    trial: boolean,
    /** A trial's: whether it was sent (unlessCut() counts it in the call's attempts only then). */
    progress: { sent: boolean } | undefined,
  ): () => Promise<AttemptResult> {
    if (previous?.kind !== 'answer') {
      if (progress === undefined) return () => this.send(call, headers, body, attempt, trial);
      return () => {
        progress.sent = true;
        return this.send(call, headers, body, attempt, trial);
      };
    }
    // The previous answer is dropped only once the breaker lets this attempt through: had it refused, that would be
    // the one returned. Dropping it is cut with the call, and then nothing is sent: the breaker passes NotSent on
    // uncounted. Not a trial's: cockatiel counts anything thrown from a half-open trial as a success, and the
    // trial goes on without the call (unlessCut() then leaves it out of the call's attempts until it is sent).
    return async () => {
      if (trial) await discard(previous.body);
      else {
        await discard(previous.body, call.hangup);
        if (call.hangup.cut) throw new NotSent();
      }
      if (progress !== undefined) progress.sent = true;
      return this.send(call, headers, body, attempt, trial);
    };
  }

  /**
   * One attempt on the wire, as a CLIENT span. An attempt cut short by its app
   * going away says nothing about the target: from a closed circuit it is
   * thrown as Uncounted, which cockatiel passes on without counting (a result
   * it does not handle would be a success, ending a run of failures). Only
   * from a closed one: cockatiel 4's executeHalfOpen counts anything thrown as
   * a success, and would close the circuit. So a half-open circuit's trial is
   * not cut short: it runs on a Hangup of its own, which never happens, goes
   * on without the app, and its outcome decides. Should it be aborted all the
   * same, it is never thrown: the breaker counts an aborted trial as a
   * failure (isBreakerFailure), and the circuit stays open. The call's
   * deadline cuts an attempt as the app going away does, as a timeout in its
   * metrics and the call's answer. Cut by the target's own `deadline`, the
   * attempt is a timeout for the breaker too (counted from a closed circuit,
   * where counting is safe): with a deadline at or under `timeout`, every
   * attempt on a hung target is cut by it, and the breaker would never see
   * the target hang. Cut by a shorter outrigger-timeout, it is Uncounted (the
   * caller's budget was short, which says nothing about the target). A trial
   * is not cut by either: the call stops waiting for it at the deadline
   * (attempts() and unlessCut()), and it goes on without the call.
   */
  private async send(
    call: OutboundCall,
    headers: HeaderMap,
    body: RequestBody,
    attempt: number,
    trial: boolean,
  ): Promise<AttemptResult> {
    const hangup = trial ? new Hangup() : call.hangup;
    const span = tracingActive()
      ? startHttpClient(
          context.active(),
          this.peer,
          { method: call.method, path: call.path, resendCount: attempt - 1 },
          headers,
        )
      : undefined;
    let result: AttemptResult;
    try {
      result = this.target.followRedirects
        ? await this.followRedirects(call.method, call.path, headers, body, hangup)
        : await exchange(this.pool, this.request(call.method, call.path, headers, body), hangup, this.target.timeout);
    } catch (error) {
      result = failureOf(error);
    }
    let uncounted = !trial && result.kind === 'failure' && result.failure === 'aborted';
    if (uncounted && call.hangup.expired) {
      result = DEADLINE_PASSED;
      uncounted = call.hangup.deadlineSetBy !== 'target';
    }
    if (span !== undefined) {
      endHttpSpan(
        span,
        result.kind === 'answer'
          ? { status: result.status }
          : { errorType: result.failure === 'error' ? result.code : outcomeOf(result), message: result.failure },
      );
    }
    const outcome = outcomeOf(result);
    this.metrics.outboundAttempts.inc({ target: this.name, outcome });
    if (uncounted) throw new Uncounted(result);
    return result;
  }

  private request(method: string, path: string, headers: HeaderMap, body: RequestBody): Dispatcher.DispatchOptions {
    // Without a servername of its own, undici takes the host header's for TLS, over the connector's
    // (read by undici's Request, missing from its DispatchOptions type).
    const options: Dispatcher.DispatchOptions & { servername?: string | undefined } = {
      method,
      path: this.pathPrefix + path,
      headers,
      body: onWire(body),
      servername: this.servername,
    };
    return options;
  }

  /** The request, following same-target redirects (the target allows it). */
  private async followRedirects(
    method: string,
    path: string,
    headers: HeaderMap,
    body: RequestBody,
    hangup: Hangup,
  ): Promise<AttemptResult> {
    for (let hops = 0; ; hops++) {
      const response = await exchange(
        this.pool,
        this.request(method, path, headers, body),
        hangup,
        this.target.timeout,
      );
      if (!REDIRECTS.has(response.status) || hops >= MAX_REDIRECTS) return response;
      const location = response.headers.location;
      const next = typeof location === 'string' ? redirectPath(this.base, this.basePath, path, location) : undefined;
      if (next === undefined) return response;
      const becomesGet = response.status === 303 || (response.status <= 302 && method === 'POST');
      if (!becomesGet && body.kind === 'stream') return response; // cannot send a streamed body twice
      await discard(response.body, hangup); // cut with the call: the next hop is then not sent (exchange())
      if (becomesGet && method !== 'GET' && method !== 'HEAD') {
        method = 'GET';
        body = { kind: 'none' };
        headers = { ...headers };
        delete headers['content-length'];
        delete headers['content-type'];
      }
      path = next;
    }
  }

  private answer(result: AttemptResult, attempts: number, call: OutboundCall): Omit<OutboundAnswer, 'end'> {
    if (call.hangup.happened) {
      if (result.kind === 'answer') drop(result.body);
      throw new CallAborted();
    }
    if (result.kind === 'failure') throw this.failed(result, attempts, call);
    const headers = responseHeaders(result.headers);
    headers['outrigger-attempts'] = String(attempts);
    return { status: result.status, headers, body: result.body };
  }

  /** The problem for a call whose last attempt had no answer. */
  private failed(result: AttemptResult & { kind: 'failure' }, attempts: number, call: OutboundCall): ProblemError {
    if (result === DEADLINE_PASSED) {
      return this.unanswered('UPSTREAM_TIMEOUT', `no answer within ${this.describeDeadline(call)}`, attempts);
    }
    const code = result.failure === 'timeout' ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNREACHABLE';
    return this.unanswered(code, describeFailure(result, this.target.timeout), attempts);
  }

  private refuseWhileOpen(): void {
    const state = this.breaker.state;
    if (state === CircuitState.HalfOpen || (state === CircuitState.Open && this.msUntilHalfOpen() > 0)) {
      throw this.circuitOpen();
    }
  }

  private circuitOpen(): ProblemError {
    this.metrics.outboundRejected.inc({ target: this.name, reason: 'circuit' });
    const seconds = Math.max(BUSY_RETRY_AFTER_S, Math.ceil(this.msUntilHalfOpen() / 1000));
    return new ProblemError(
      'CIRCUIT_OPEN',
      `target "${this.name}" ${tripOf(this.target.circuitBreaker)}; calls resume after a trial in ${seconds} s`,
      { headers: { 'retry-after': String(seconds), 'outrigger-attempts': '0' } },
    );
  }

  private msUntilHalfOpen(): number {
    if (this.breaker.state !== CircuitState.Open) return 0;
    return Math.max(0, this.openedAt + this.target.circuitBreaker.halfOpenAfter - Date.now());
  }

  private onCircuitChange(state: CircuitState): void {
    if (state === CircuitState.Open) this.openedAt = Date.now();
    const name = this.circuitState;
    trace.getActiveSpan()?.addEvent('outrigger.circuit_breaker', { 'outrigger.target': this.name, state: name });
    const log = { target: this.name, circuit: name };
    if (state === CircuitState.Open) this.logger.warn(log, 'circuit opened: calls to the target are refused');
    else this.logger.info(log, name === 'closed' ? 'circuit closed' : 'circuit half-open: one trial call');
  }

  /** Calls holding a bulkhead slot: sending, waiting out a back-off, or streaming their answers back. */
  get inFlight(): number {
    return this.bulkhead.active;
  }

  /** Calls waiting in the bulkhead's queue for a slot. */
  get queued(): number {
    return this.bulkhead.queued;
  }

  /** A call that got no answer from the target: by its problem's code, or `aborted`. */
  private recordRefusal(method: string, error: unknown, started: number): void {
    if (isProblemError(error)) this.record(method, error.code, started);
    else if (error instanceof CallAborted) this.record(method, 'aborted', started);
  }

  private record(method: string, status: string, started: number): void {
    this.metrics.outboundRequests.inc({ target: this.name, method, status });
    this.metrics.outboundRequestDuration.observe({ target: this.name, method }, (performance.now() - started) / 1000);
  }
}

/**
 * A half-open trial's result, or TrialGoesOn once the call is cut (its deadline passed, or its app left):
 * the call ends then, without waiting for the trial, whose outcome still decides the circuit.
 */
async function unlessCut(
  trial: Promise<AttemptResult>,
  hangup: Hangup,
  attempts: () => number,
): Promise<AttemptResult> {
  let stop: () => void = noop;
  const cut = new Promise<typeof CUT>((resolve) => {
    stop = () => resolve(CUT);
    if (hangup.cut) stop();
    else hangup.watch(stop);
  });
  try {
    const first = await Promise.race([trial, cut]);
    if (first !== CUT) return first;
  } finally {
    hangup.unwatch(stop);
  }
  throw new TrialGoesOn(trial, attempts());
}

const CUT = Symbol('cut');

/** The answer to a trial the call no longer waits for: no one will read it. */
async function dropAnswer(result: AttemptResult): Promise<void> {
  if (result.kind === 'answer') await discard(result.body);
}

function noop(): void {}

/** The request body as undici sends it. */
function onWire(body: RequestBody): Buffer | Readable | undefined {
  return body.kind === 'none' ? undefined : body.kind === 'buffered' ? body.data : body.stream;
}

/** Failures in a row, or (the sampling option) a failure ratio over a sliding window. */
function breakerOf(breaker: CircuitBreaker): ConsecutiveBreaker | SamplingBreaker {
  if (breaker.sampling === undefined) return new ConsecutiveBreaker(breaker.consecutiveFailures);
  return new SamplingBreaker(breaker.sampling);
}

/** What opened the circuit, for the CIRCUIT_OPEN detail. */
function tripOf(breaker: CircuitBreaker): string {
  if (breaker.sampling === undefined) return `failed ${breaker.consecutiveFailures} times in a row`;
  const { failureRatio, window } = breaker.sampling;
  return `failed more than ${Math.round(failureRatio * 100)}% of its attempts over ${window / 1000} s`;
}
