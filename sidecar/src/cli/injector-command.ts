// `outrigger injector`: the mutating admission webhook that adds the sidecar
// to annotated pods (docs/injector.md). Runs until SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { formatDuration } from '../config/duration.ts';
import { duration, port as portField } from '../config/fields.ts';
import { isConfigError, typed } from '../config/load.ts';
import { LOG_LEVELS } from '../config/schema.ts';
import { DRAIN_MS, Injector, MAX_DRAIN_MS } from '../k8s/injector/injector.ts';
import { type InjectorConfig, loadInjectorConfig } from '../k8s/injector/injector-config.ts';
import { isCertificateError } from '../k8s/injector/serving-certificate.ts';
import { createLogger } from '../telemetry/logger.ts';
import { describeListenError, firstSignal, reportProblems, reportUsage, UsageError } from './command-line.ts';

interface InjectorArgs {
  certFile: string;
  keyFile: string;
  port: number;
  opsPort: number;
  host: string;
  logLevel: string;
  drainMs: number;
  config?: string | undefined;
}

function parseInjectorArgs(args: string[]): InjectorArgs {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        port: { type: 'string', default: '8443' },
        'ops-port': { type: 'string', default: '9464' },
        host: { type: 'string', default: '0.0.0.0' },
        'log-level': { type: 'string', default: 'info' },
        drain: { type: 'string', default: formatDuration(DRAIN_MS) },
        config: { type: 'string', short: 'c' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  // The configuration's port field: the same range and message as http.port; read as OUTRIGGER_HTTP_PORT is.
  const port = (flag: string) => {
    const text = values[flag] as string;
    const parsed = portField({ anyFree: true }).safeParse(typed(text, 'integer'));
    if (!parsed.success) throw new UsageError(`--${flag} ${JSON.stringify(text)}: ${parsed.error.issues[0]?.message}`);
    return parsed.data;
  };
  for (const flag of ['tls-cert', 'tls-key']) {
    if (values[flag] === undefined) throw new UsageError(`--${flag} FILE is required (the webhook serves HTTPS)`);
  }
  const logLevel = values['log-level'] as string;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new UsageError(`--log-level ${JSON.stringify(logLevel)}: expected one of ${LOG_LEVELS.join(', ')}`);
  }
  const drain = duration().safeParse(values.drain);
  if (!drain.success || drain.data > MAX_DRAIN_MS) {
    const expected = drain.success ? `at most ${formatDuration(MAX_DRAIN_MS)}` : drain.error.issues[0]?.message;
    throw new UsageError(`--drain ${JSON.stringify(values.drain)}: ${expected}`);
  }
  return {
    logLevel,
    drainMs: drain.data,
    certFile: values['tls-cert'] as string,
    keyFile: values['tls-key'] as string,
    port: port('port'),
    opsPort: port('ops-port'),
    host: values.host as string,
    config: values.config,
  };
}

export async function injectorCommand(args: string[]): Promise<number> {
  let parsed: InjectorArgs;
  let config: InjectorConfig;
  try {
    parsed = parseInjectorArgs(args);
    config = loadInjectorConfig(parsed.config);
  } catch (error) {
    if (!isConfigError(error)) return reportUsage(error);
    reportProblems(error.problems);
    return 2;
  }
  // The injector's own log level; config.logLevel is the sidecars'.
  const logger = createLogger(parsed.logLevel);
  let injector: Injector;
  try {
    injector = new Injector({
      config,
      certificate: { certFile: parsed.certFile, keyFile: parsed.keyFile },
      host: parsed.host,
      port: parsed.port,
      opsPort: parsed.opsPort,
      drainMs: parsed.drainMs,
      logger,
    });
  } catch (error) {
    if (!isCertificateError(error)) throw error;
    process.stderr.write(`outrigger: ${(error as Error).message}\n`);
    return 2;
  }
  const signal = firstSignal();
  try {
    await injector.start();
  } catch (error) {
    process.stderr.write(`outrigger: ${describeListenError(error)}\n`);
    await injector.stop();
    return 1;
  }
  logger.info({ signal: await signal }, 'signal received');
  return (await injector.stop()) ? 0 : 1;
}
