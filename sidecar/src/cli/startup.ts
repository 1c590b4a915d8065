// What both commands share: parsing arguments and loading the configuration,
// reporting mistakes as one line each (exit code 2), starting the sidecar
// with its tracing, and waiting for signals.
import { parseArgs } from 'node:util';
import { isConfigError, loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { Sidecar } from '../sidecar.ts';
import { createLogger } from '../telemetry/logger.ts';
import { startTracing } from '../telemetry/tracing.ts';
import { VERSION } from '../version.ts';

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

export interface RunningSidecar {
  sidecar: Sidecar;
  /** Base URL of the app API. */
  api: string;
  /** Stops the sidecar, then exports the spans still buffered (the last ones tell of the shutdown); true when clean. */
  stop: () => Promise<boolean>;
}

/**
 * Tracing from the OTEL_* variables, registered before the sidecar takes a
 * request, then the sidecar, listening. Undefined when it could not listen
 * (said on stderr; everything stopped again).
 */
export async function startSidecarProcess(config: Config): Promise<RunningSidecar | undefined> {
  const logger = createLogger(config.log.level);
  const tracing = await startTracing({ serviceName: config.appId, version: VERSION, logger });
  const sidecar = await Sidecar.create(config, { logger });
  const stop = async () => {
    const clean = await sidecar.stop();
    await tracing.shutdown();
    return clean;
  };
  try {
    return { sidecar, api: (await sidecar.start()).api, stop };
  } catch (error) {
    process.stderr.write(`outrigger: ${describeListenError(error)}\n`);
    await stop();
    return undefined;
  }
}

function describeListenError(error: unknown): string {
  const { code, address, port } = error as NodeJS.ErrnoException & { address?: string; port?: number };
  if (code === 'EADDRINUSE') return `cannot listen on ${address}:${port}: the port is in use`;
  if (code === 'EADDRNOTAVAIL') return `cannot listen on ${address}: no such local address`;
  if (code === 'EACCES') return `cannot listen on ${address}:${port}: permission denied`;
  throw error;
}
