// Loads the configuration: YAML file, then environment overrides, then the
// schema. Every failure becomes a ConfigError whose lines name the field.
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { type Config, ConfigSchema } from './schema.ts';

/** Environment variables that override the file (API.md, "Running it"). */
export const ENV_OVERRIDES = [
  { env: 'OUTRIGGER_APP_ID', path: ['appId'], type: 'string' },
  { env: 'OUTRIGGER_BROKER_URL', path: ['broker', 'url'], type: 'string' },
  { env: 'OUTRIGGER_OUTBOX_URL', path: ['outbox', 'url'], type: 'string' },
  { env: 'OUTRIGGER_HTTP_PORT', path: ['http', 'port'], type: 'integer' },
  { env: 'OUTRIGGER_OPS_PORT', path: ['ops', 'port'], type: 'integer' },
  { env: 'OUTRIGGER_APP_PORT', path: ['app', 'port'], type: 'integer' },
  { env: 'OUTRIGGER_API_TOKEN', path: ['auth', 'apiToken'], type: 'string' },
  { env: 'OUTRIGGER_APP_TOKEN', path: ['auth', 'appToken'], type: 'string' },
  { env: 'OUTRIGGER_LOG_LEVEL', path: ['log', 'level'], type: 'string' },
  { env: 'OUTRIGGER_KUBERNETES', path: ['kubernetes', 'watch'], type: 'boolean' },
  { env: 'OUTRIGGER_NAMESPACE', path: ['kubernetes', 'namespace'], type: 'string' },
] as const;

export class ConfigError extends Error {
  readonly isConfigError = true;
  /** One line per problem, each naming the field. */
  readonly problems: string[];

  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export const isConfigError = (error: unknown): error is ConfigError =>
  typeof error === 'object' && error !== null && (error as ConfigError).isConfigError === true;

export interface LoadOptions {
  /** Path of the YAML file; without one, the configuration comes from the environment alone. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

/** A setting an environment variable set, and the file's own value it replaced (undefined when the file had none). */
export interface EnvOverride {
  variable: string;
  fileValue: unknown;
}

export interface LoadedConfig {
  config: Config;
  /** The settings environment variables set, by path ('kubernetes.watch'): k8s/cluster.ts asks who wanted the watch. */
  fromEnv: ReadonlyMap<string, EnvOverride>;
  /** The file it was read from, if any: problems found later (Outbound.create) name it too. */
  file: string | undefined;
}

export function loadConfig({ file, env = process.env }: LoadOptions): LoadedConfig {
  const raw = file === undefined ? {} : readYaml(file);
  const fromEnv = applyEnv(raw, env);
  const result = ConfigSchema.safeParse(raw, { reportInput: true });
  const prefix = file === undefined ? 'configuration' : file;
  // Secret headers and TLS files are checked when the sidecar is created (Outbound.create), and re-read while it runs.
  if (result.success) return { config: result.data, fromEnv, file };
  throw new ConfigError(result.error.issues.map((issue) => `${prefix}: ${describeIssue(issue, fromEnv)}`));
}

/** Validates an already-parsed object (tests, CRD specs). */
export function parseConfig(raw: unknown): Config {
  const result = ConfigSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.map((issue) => describeIssue(issue, new Map())));
}

/** A YAML file of settings: a mapping ({} when empty), or a ConfigError saying why not. */
export function readYaml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([`${file}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, maxAliasCount: 100 });
  } catch (error) {
    if (error instanceof YAMLParseError) {
      // With prettyErrors the first line ends "at line L, column C:"; the rest is a code excerpt.
      throw new ConfigError([`${file}: not valid YAML: ${error.message.split('\n')[0]?.replace(/:$/, '')}`]);
    }
    throw error;
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError([`${file}: expected a mapping of settings at the top level`]);
  }
  return doc as Record<string, unknown>;
}

/** Writes the environment overrides into `raw`; returns which field came from which variable, over what. */
function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Map<string, EnvOverride> {
  const sources = new Map<string, EnvOverride>();
  for (const { env: name, path, type } of ENV_OVERRIDES) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    let parent = raw;
    for (const key of path.slice(0, -1)) {
      const child = parent[key];
      if (typeof child !== 'object' || child === null || Array.isArray(child)) parent[key] = {};
      parent = parent[key] as Record<string, unknown>;
    }
    const key = path[path.length - 1] as string;
    sources.set(path.join('.'), { variable: name, fileValue: parent[key] });
    parent[key] = typed(value, type);
  }
  return sources;
}

/** "8080" as 8080 and "true" as true; anything else stays a string, for the schema to name what is wrong. */
export function typed(value: string, type: 'string' | 'integer' | 'boolean'): unknown {
  if (type === 'integer' && /^\d+$/.test(value)) return Number(value);
  if (type === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

/** `subscriptions[0].retry.maxAttempts` from ['subscriptions', 0, 'retry', 'maxAttempts']. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, index) => (typeof key === 'number' ? `[${key}]` : index === 0 ? String(key) : `.${String(key)}`))
    .join('');
}

/** One line for a zod issue, naming the field (and the variable it came from, if one did). */
export function describeIssue(issue: z.core.$ZodIssue, fromEnv: ReadonlyMap<string, EnvOverride> = new Map()): string {
  const path = formatPath(issue.path);
  const source = fromEnv.get(issue.path.join('.'))?.variable;
  const field = source === undefined ? path : `${path} (from ${source})`;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const keys = issue.keys.map((key) => `"${key}"`).join(', ');
      return `${field === '' ? '' : `${field}: `}unknown field${issue.keys.length > 1 ? 's' : ''} ${keys}`;
    }
    case 'invalid_value':
      return `${field}: expected one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'invalid_type':
      if (issue.input === undefined) return `${field}: required`;
      return `${field}: ${issue.message.startsWith('Invalid input') ? `expected ${issue.expected}` : issue.message}`;
    default:
      // zod's own wording ("Too small: expected number to be >=1") without its prefix.
      return `${field}: ${issue.message.replace(/^(Too small|Too big|Invalid input|Invalid string): /, '')}`;
  }
}
