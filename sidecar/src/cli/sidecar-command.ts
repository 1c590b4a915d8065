// `outrigger sidecar`: run until SIGTERM/SIGINT, then stop gracefully.
import { Sidecar } from '../sidecar.ts';
import { createLogger } from '../telemetry/logger.ts';
import { startTracing } from '../telemetry/tracing.ts';
import { VERSION } from '../version.ts';
import { describeListenError, firstSignal, loadConfigOrReport, parseCommandArgs, reportUsage } from './startup.ts';

export async function sidecarCommand(args: string[]): Promise<number> {
  let file: string | undefined;
  try {
    file = parseCommandArgs(args, false).values.config;
  } catch (error) {
    return reportUsage(error);
  }
  const config = loadConfigOrReport(file);
  if (config === undefined) return 2;

  const signal = firstSignal();
  const logger = createLogger(config.log.level);
  const tracing = startTracing({ serviceName: config.appId, version: VERSION, logger });
  const sidecar = await Sidecar.create(config, { logger });
  /** The sidecar, then the spans still buffered (the last ones describe the shutdown). */
  const stop = async () => {
    const clean = await sidecar.stop();
    await tracing.shutdown();
    return clean;
  };
  try {
    await sidecar.start();
  } catch (error) {
    process.stderr.write(`outrigger: ${describeListenError(error)}\n`);
    await stop();
    return 1;
  }
  sidecar.logger.info({ signal: await signal }, 'signal received');
  return (await stop()) ? 0 : 1;
}
