// What `sidecar` and `run` share: loading the configuration, reporting
// mistakes as one line each (exit code 2), and starting the sidecar with its
// tracing.
import { parseArgs } from 'node:util';
import { isConfigError, type LoadedConfig, loadConfig } from '../config/load.ts';
import { Sidecar } from '../sidecar.ts';
import { createLogger } from '../telemetry/logger.ts';
import { startTracing } from '../telemetry/tracing.ts';
import { VERSION } from '../version.ts';
import { describeListenError, reportProblems, UsageError } from './command-line.ts';

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

/** The configuration (which settings the environment set, the file), or undefined after printing why it is not valid. */
export function loadConfigOrReport(file: string | undefined): LoadedConfig | undefined {
  try {
    return loadConfig({ file });
  } catch (error) {
    if (!isConfigError(error)) throw error;
    reportProblems(error.problems);
    return undefined;
  }
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
 * request, then the sidecar, listening. When it cannot start, the exit code
 * instead (said on stderr; everything stopped again): 2 for configuration it
 * could only judge while starting (secret headers, TLS files, the Kubernetes settings), 1 when it could not listen.
 */
export async function startSidecarProcess(loaded: LoadedConfig): Promise<RunningSidecar | 1 | 2> {
  const { config, file, fromEnv } = loaded;
  const logger = createLogger(config.log.level);
  const tracing = await startTracing({ serviceName: config.appId, version: VERSION, logger });
  let sidecar: Sidecar;
  try {
    sidecar = await Sidecar.create(config, { logger, file, fromEnv });
  } catch (error) {
    await tracing.shutdown();
    if (!isConfigError(error)) throw error;
    reportProblems(error.problems);
    return 2;
  }
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
    return 1;
  }
}
