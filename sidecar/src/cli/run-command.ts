// `outrigger run -- COMMAND...`: the local equivalent of a pod. Starts the
// sidecar, then the app with OUTRIGGER_URL (and PORT when app.port is set).
// On SIGTERM/SIGINT the app stops first, then the sidecar, as in Kubernetes
// with a native sidecar. Exits with the app's exit code.
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sidecar } from '../sidecar.ts';
import { firstSignal, reportUsage, UsageError } from './command-line.ts';
import { loadConfigOrReport, parseCommandArgs, startSidecarProcess } from './startup.ts';

const BROKER_WAIT_MS = 10_000;

export async function runCommand(args: string[]): Promise<number> {
  let file: string | undefined;
  let command: string[];
  try {
    const parsed = parseCommandArgs(args, true);
    file = parsed.values.config;
    command = parsed.positionals;
    if (command.length === 0)
      throw new UsageError('run needs a command after "--", e.g. outrigger run -- python3 app.py');
  } catch (error) {
    return reportUsage(error);
  }
  const loaded = loadConfigOrReport(file);
  if (loaded === undefined) return 2;
  const { config } = loaded;

  const signal = firstSignal();
  const running = await startSidecarProcess(loaded);
  if (typeof running === 'number') return running;
  const { sidecar, api, stop } = running;
  // Like `dapr run`: give the broker a moment so the app's first publish succeeds.
  const early = await Promise.race([brokerConnected(sidecar, BROKER_WAIT_MS), signal]);
  if (early !== undefined) {
    sidecar.logger.info({ signal: early }, 'signal received before the app started');
    return (await stop()) ? 0 : 1;
  }

  const [program, ...programArgs] = command as [string, ...string[]];
  const child = spawn(program, programArgs, {
    stdio: 'inherit',
    env: {
      ...process.env,
      OUTRIGGER_URL: api,
      OUTRIGGER_APP_ID: config.appId,
      ...(config.app.port === undefined
        ? {}
        : { PORT: String(config.app.port), OUTRIGGER_APP_PORT: String(config.app.port) }),
    },
  });
  const exited = exitOf(child);
  const first = await Promise.race([exited, signal]);
  let code: number;
  if (typeof first === 'number') {
    code = first;
    sidecar.logger.info({ exitCode: code }, 'app exited');
  } else {
    sidecar.logger.info({ signal: first }, 'signal received; stopping the app');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), config.shutdown.grace);
    code = await exited;
    clearTimeout(timer);
  }
  const clean = await stop();
  return clean ? code : Math.max(code, 1);
}

/** The child's exit code (128 + signal number when killed; 127 when it could not start). */
function exitOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      process.stderr.write(`outrigger: cannot start the app: ${error.code ?? error.message}\n`);
      resolve(127);
    });
    child.once('exit', (exitCode, signal) => {
      resolve(exitCode ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0)));
    });
  });
}

/** Resolves (with undefined) once the broker is connected, or after `limitMs` regardless. */
async function brokerConnected(sidecar: Sidecar, limitMs: number): Promise<undefined> {
  for (let waited = 0; sidecar.broker.state !== 'connected' && waited < limitMs; waited += 50) await sleep(50);
  return undefined;
}
