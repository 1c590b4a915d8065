import { setTimeout as sleep } from 'node:timers/promises';

export interface UntilOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /**
   * Gives up at once, with its error, when this promise rejects (e.g. the
   * process being waited for exited): the probe's own errors only say why it
   * is not there yet, and are reported at the timeout.
   */
  failOn?: Promise<unknown>;
}

/** Polls `probe` until it returns a truthy value; fails after `timeoutMs`, or when `failOn` rejects. */
export async function until<T>(
  what: string,
  probe: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 25, failOn }: UntilOptions = {},
): Promise<NonNullable<T>> {
  let failed: { error: unknown } | undefined;
  const gaveUp = failOn?.then(
    () => new Promise<never>(() => {}),
    (cause: unknown) => {
      const message = cause instanceof Error ? cause.message : String(cause);
      failed = { error: new Error(`gave up waiting for ${what}: ${message}`, { cause }) };
      throw failed.error;
    },
  );
  const polling = (async () => {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const value = await probe();
        if (value) return value as NonNullable<T>;
      } catch (error) {
        last = error;
      }
      // failOn won the race: stop polling (nobody waits for this loop any more).
      if (failed) throw failed.error;
      if (Date.now() >= deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
        );
      }
      await sleep(intervalMs);
    }
  })();
  if (gaveUp === undefined) return polling;
  // The loser's rejection is handled here, not left unhandled.
  polling.catch(() => {});
  return Promise.race([polling, gaveUp]);
}

/** The HTTP status of GET url, or 0 when nothing answers. */
export async function statusOf(url: string): Promise<number> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}
