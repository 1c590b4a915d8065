// What a failed API call throws: the HTTP status code and, when the API server
// explains itself with a Status object (it nearly always does), its reason and
// message. A watch's ERROR event carries the same Status and becomes the same
// error, so a caller tells "410 Gone" apart the same way for both.

/** The fields of a metav1.Status that say what went wrong. */
export interface ApiStatus {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
}

export class KubeApiError extends Error {
  /** The HTTP status code (for an ERROR event, the Status's code). */
  readonly code: number;
  /** The Status's machine-readable reason: Forbidden, NotFound, Expired, ... */
  readonly reason: string | undefined;

  constructor(code: number, status: ApiStatus = {}) {
    super(status.message ?? `HTTP ${code}`);
    this.name = 'KubeApiError';
    this.code = code;
    this.reason = status.reason;
  }

  /** From an answer that is not 2xx: its body is a Status, or (from a proxy in between, say) anything else. */
  static fromAnswer(code: number, body: string): KubeApiError {
    try {
      const status = JSON.parse(body) as ApiStatus;
      if (typeof status === 'object' && status !== null && status.kind === 'Status')
        return new KubeApiError(code, status);
    } catch {
      // Not JSON: the code alone says it.
    }
    return new KubeApiError(code, { message: body.trim().slice(0, 200) || undefined });
  }
}

export const isKubeApiError = (error: unknown): error is KubeApiError => error instanceof KubeApiError;

/** The resourceVersion asked for is older than the API server keeps: list again. */
export const isGone = (error: unknown): boolean => isKubeApiError(error) && error.code === 410;
