// Every error the app API answers with: RFC 9457 problem details carrying a
// stable `code`. docs/errors.md lists each code under an anchor of the same
// name (a test keeps the two in step).

export const PROBLEMS = {
  REQUEST_INVALID: { status: 400, title: 'The request is not valid' },
  TOPIC_INVALID: { status: 400, title: 'The topic name is not valid' },
  DELAY_INVALID: { status: 400, title: 'The delay or delivery time is not valid' },
  PATH_INVALID: { status: 400, title: "The outbound path would leave the target's base URL" },
  METRIC_INVALID: { status: 400, title: 'The app metric is not valid' },
  METRIC_LIMIT: { status: 400, title: 'The app metrics would exceed their limits' },
  UNAUTHORIZED: { status: 401, title: 'Missing or wrong outrigger-api-token' },
  NOT_FOUND: { status: 404, title: 'No such route' },
  TARGET_UNKNOWN: { status: 404, title: 'No outbound target of that name' },
  SUBSCRIPTION_UNKNOWN: { status: 404, title: 'No subscription of that name' },
  DEAD_LETTER_UNKNOWN: { status: 404, title: 'No dead letter with that id' },
  REQUEST_TIMEOUT: { status: 408, title: "The request's headers did not arrive in time" },
  SUBSCRIPTION_NOT_PULL: { status: 409, title: 'The subscription is not a pull subscription' },
  BODY_TOO_LARGE: { status: 413, title: 'The request body is larger than allowed' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'The content-type is not accepted here' },
  HEADERS_TOO_LARGE: { status: 431, title: "The request's headers are larger than allowed" },
  BACKPRESSURE: { status: 429, title: 'Too many publishes are waiting for the broker' },
  BULKHEAD_FULL: { status: 429, title: "The target's concurrent calls and queue are full" },
  INTERNAL: { status: 500, title: 'Internal error' },
  UPSTREAM_UNREACHABLE: { status: 502, title: 'The target could not be reached' },
  BROKER_UNAVAILABLE: { status: 503, title: 'The broker cannot take the message now' },
  SHUTTING_DOWN: { status: 503, title: 'The sidecar is shutting down' },
  CIRCUIT_OPEN: { status: 503, title: "The target's circuit breaker is open" },
  UPSTREAM_TIMEOUT: { status: 504, title: 'The target did not answer in time' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof PROBLEMS;

export const PROBLEM_TYPE_BASE = 'https://outrigger.dev/docs/errors#';

/** The `type` URI of a code: its anchor in docs/errors.md. */
export const problemType = (code: ProblemCode) => `${PROBLEM_TYPE_BASE}${code.toLowerCase().replaceAll('_', '-')}`;

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
  instance?: string;
  [extension: string]: unknown;
}

export interface ProblemOptions {
  /** Extra response headers, e.g. retry-after. */
  headers?: Record<string, string>;
  /** Extra members of the problem body. */
  extensions?: Record<string, unknown>;
}

/** An error that becomes a problem+json response. Throw it from any handler. */
export class ProblemError extends Error {
  readonly isProblem = true;
  readonly status: number;
  readonly code: ProblemCode;
  readonly detail: string;
  readonly options: ProblemOptions;

  constructor(code: ProblemCode, detail: string, options: ProblemOptions = {}) {
    super(`${code}: ${detail}`);
    this.name = 'ProblemError';
    this.code = code;
    this.detail = detail;
    this.options = options;
    this.status = PROBLEMS[code].status;
  }

  toBody(instance?: string): ProblemBody {
    return {
      ...this.options.extensions,
      type: problemType(this.code),
      title: PROBLEMS[this.code].title,
      status: this.status,
      detail: this.detail,
      code: this.code,
      ...(instance === undefined ? {} : { instance }),
    };
  }
}

export const isProblemError = (error: unknown): error is ProblemError =>
  typeof error === 'object' && error !== null && (error as ProblemError).isProblem === true;
