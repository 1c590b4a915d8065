// The sidecar as a library: what tests, benchmarks and the injector import.
export { buildApp } from './app.ts';
export { ConfigError, isConfigError, loadConfig, parseConfig } from './config/load.ts';
export type { Config, ConfigInput, Subscription, Target } from './config/schema.ts';
export { ConfigSchema } from './config/schema.ts';
export { Sidecar, type SidecarAddresses } from './sidecar.ts';
