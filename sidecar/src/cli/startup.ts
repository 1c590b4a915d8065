// What both commands share: parsing arguments and loading the configuration,
// reporting mistakes as one line each (exit code 2), and waiting for signals.
import { parseArgs } from 'node:util';
import { isConfigError, loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';

export class UsageError extends Error {}

export function parseCommandArgs(args: string[], allowPositionals: boolean) {
  try {
    return parseArgs({
      args,
      options: { config: { type: 'string', short: 'c' } },
      allowPositionals,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The configuration, or undefined after printing why it is not valid. */
export function loadConfigOrReport(file: string | undefined): Config | undefined {
  try {
    return loadConfig({ file });
  } catch (error) {
    if (!isConfigError(error)) throw error;
    for (const problem of error.problems) process.stderr.write(`outrigger: ${problem}\n`);
    return undefined;
  }
}

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

export function describeListenError(error: unknown): string {
  const { code, address, port } = error as NodeJS.ErrnoException & { address?: string; port?: number };
  if (code === 'EADDRINUSE') return `cannot listen on ${address}:${port}: the port is in use`;
  if (code === 'EADDRNOTAVAIL') return `cannot listen on ${address}: no such local address`;
  if (code === 'EACCES') return `cannot listen on ${address}:${port}: permission denied`;
  throw error;
}
