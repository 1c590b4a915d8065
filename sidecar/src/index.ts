// The sidecar as a library: the package's entry point (sidecar/package.json "exports").
// Nothing in this repository imports it: cli/main.ts loads each command's module
// directly (the injector never loads this), and tests and benchmarks import the modules they use.
export { buildApp } from './app.ts';
export { ConfigError, isConfigError, loadConfig, parseConfig } from './config/load.ts';
export type { Config, ConfigInput, Subscription, Target } from './config/schema.ts';
export { ConfigSchema } from './config/schema.ts';
export { Sidecar, type SidecarAddresses } from './sidecar.ts';
