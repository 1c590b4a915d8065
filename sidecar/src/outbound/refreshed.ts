// A value made from files a Kubernetes Secret mounts (a header's secretFile,
// a target's TLS files): made again once its copy is older than MAX_AGE_MS,
// so a rotated Secret is used without a restart. The kubelet updates a
// Secret volume in place. When the files cannot be read or made into a value
// (yet), the last good one stays and `onError` says why.
const MAX_AGE_MS = 2_000;

export class Refreshed<T> {
  private value: T;
  private readAt: number;
  private readonly make: (previous: T) => T;
  private readonly onError: (error: unknown) => void;

  /** `value`: the first one, made by the caller at startup (where a failure is a configuration error). */
  constructor(value: T, make: (previous: T) => T, onError: (error: unknown) => void, now = Date.now()) {
    this.value = value;
    this.make = make;
    this.onError = onError;
    this.readAt = now;
  }

  current(now = Date.now()): T {
    if (now - this.readAt >= MAX_AGE_MS) {
      this.readAt = now;
      try {
        this.value = this.make(this.value);
      } catch (error) {
        this.onError(error);
      }
    }
    return this.value;
  }
}
