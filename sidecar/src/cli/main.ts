// The `outrigger` command. Exit codes: 0 done, 1 failed at run time,
// 2 bad usage or bad configuration. Each command's module is loaded only when
// it runs: the sidecar never loads the injector's code nor the injector the
// sidecar's (startup time and memory in every pod).

import { VERSION } from '../version.ts';

const USAGE = `usage: outrigger <command> [options]

commands:
  sidecar [--config FILE]             run the sidecar (configuration: FILE and OUTRIGGER_* variables)
  run [--config FILE] -- COMMAND...   run COMMAND with its own sidecar, like a pod on this machine
  injector --tls-cert F --tls-key F   run the sidecar injector webhook (HTTPS; docs/injector.md)
  version                             print the version

docs: docs/api.md (the HTTP API), docs/configuration.md (the configuration file)`;

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'sidecar':
      return (await import('./sidecar-command.ts')).sidecarCommand(args);
    case 'run':
      return (await import('./run-command.ts')).runCommand(args);
    case 'injector':
      return (await import('./injector-command.ts')).injectorCommand(args);
    case 'version':
    case '--version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      process.stderr.write(
        `outrigger: ${command === undefined ? 'missing command' : `unknown command "${command}"`}\n${USAGE}\n`,
      );
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
