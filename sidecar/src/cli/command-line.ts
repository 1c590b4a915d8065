// What every command shares: usage mistakes and configuration problems
// reported as one line each (exit code 2), a port that cannot be bound said
// in words (exit code 1), and waiting for the signal to stop. Kept apart from
// startup.ts so the injector does not load the sidecar.

export class UsageError extends Error {}

export function reportUsage(error: unknown): number {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`outrigger: ${error.message}\n`);
  return 2;
}

/** One line per problem on stderr, each naming the field (a ConfigError's problems). */
export function reportProblems(problems: readonly string[]): void {
  for (const problem of problems) process.stderr.write(`outrigger: ${problem}\n`);
}

/** What went wrong with listen(), with the address and port; rethrows anything that is not a listen error. */
export function describeListenError(error: unknown): string {
  const { code, address, port } = error as NodeJS.ErrnoException & { address?: string; port?: number };
  if (code === 'EADDRINUSE') return `cannot listen on ${address}:${port}: the port is in use`;
  if (code === 'EADDRNOTAVAIL') return `cannot listen on ${address}: no such local address`;
  if (code === 'EACCES') return `cannot listen on ${address}:${port}: permission denied`;
  throw error;
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
