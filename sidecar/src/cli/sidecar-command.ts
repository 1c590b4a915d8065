// `outrigger sidecar`: run until SIGTERM/SIGINT, then stop gracefully.
import { Sidecar } from '../sidecar.ts';
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
  const sidecar = await Sidecar.create(config);
  try {
    await sidecar.start();
  } catch (error) {
    process.stderr.write(`outrigger: ${describeListenError(error)}\n`);
    await sidecar.stop();
    return 1;
  }
  sidecar.logger.info({ signal: await signal }, 'signal received');
  return (await sidecar.stop()) ? 0 : 1;
}
