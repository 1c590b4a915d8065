// What every command shares: usage mistakes reported as one line (exit code
// 2), and waiting for the signal to stop. Kept apart from startup.ts so the
// injector does not load the sidecar.

export class UsageError extends Error {}

export function reportUsage(error: unknown): number {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`outrigger: ${error.message}\n`);
  return 2;
}

/** Resolves with the first SIGTERM or SIGINT; a second one forces exit 1. */
export function firstSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const handler = (signal: NodeJS.Signals) => {
      if (received) {
        process.stderr.write(`outrigger: second ${signal}; exiting now\n`);
        process.exit(1);
      }
      received = true;
      resolve(signal);
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  });
}
