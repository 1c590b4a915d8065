// `outrigger sidecar`: run until SIGTERM/SIGINT, then stop gracefully.
import { firstSignal, reportUsage } from './command-line.ts';
import { loadConfigOrReport, parseCommandArgs, startSidecarProcess } from './startup.ts';

export async function sidecarCommand(args: string[]): Promise<number> {
  let file: string | undefined;
  try {
    file = parseCommandArgs(args, false).values.config;
  } catch (error) {
    return reportUsage(error);
  }
  const loaded = loadConfigOrReport(file);
  if (loaded === undefined) return 2;

  const signal = firstSignal();
  const running = await startSidecarProcess(loaded);
  if (typeof running === 'number') return running;
  running.sidecar.logger.info({ signal: await signal }, 'signal received');
  return (await running.stop()) ? 0 : 1;
}
