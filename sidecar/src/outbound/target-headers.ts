// A target's configured headers ({value}, {secretEnv}, {secretFile}): added by
// the sidecar to every call, never logged, never echoed. Environment values
// are read once (they cannot change under a running process); files are
// Refreshed, so a rotated Kubernetes secret is picked up without a restart.
// Anything missing at startup is a configuration error naming the field
// (Outbound.create, in outbound.ts).
import { readFileSync } from 'node:fs';
import type { Target } from '../config/schema.ts';
import type { HeaderMap } from './headers.ts';
import { Refreshed } from './refreshed.ts';

interface FileHeader {
  name: string;
  value: Refreshed<string>;
}

/** Secret files often end with a newline; a header value cannot hold one. */
const clean = (text: string) => text.replace(/[\r\n]+$/, '').trim();
const isValidValue = (value: string) => !/[\r\n\0]/.test(value);

/** A read's error code; for a file that was read, `unusable` (never its content). */
const codeOf = (error: unknown) => (error as NodeJS.ErrnoException).code ?? 'unusable';

/** The header value in a file; throws why there is none (the read's error, with its code, or what is wrong with it). */
function readValue(path: string): string {
  const value = clean(readFileSync(path, 'utf8'));
  if (value === '') throw new Error(`${path} is empty`);
  if (!isValidValue(value)) throw new Error(`${path} has a line break inside`);
  return value;
}

export class TargetHeaders {
  private readonly files: FileHeader[];
  /** What `current` gives: made again only when a file's value changes. */
  private map: HeaderMap;

  /** `headers`: every header's value now, the files' first reads included. */
  private constructor(headers: HeaderMap, files: FileHeader[]) {
    this.files = files;
    this.map = headers;
  }

  /** Reads every configured value now; or lists each one that is missing or unusable, naming its field. */
  static resolve(
    target: Target,
    /** Where the target is written, for the messages: `targets[2]`, or `spec` for a resource. */
    field: string,
    env: NodeJS.ProcessEnv,
    onReadError: (name: string, code: string) => void = () => {},
  ): { headers: TargetHeaders; problems?: never } | { headers?: never; problems: string[] } {
    const problems: string[] = [];
    const initial: HeaderMap = {};
    const files: FileHeader[] = [];
    for (const [given, source] of Object.entries(target.headers)) {
      const name = given.toLowerCase();
      const at = `${field}.headers.${given}`;
      if ('value' in source) {
        if (isValidValue(source.value)) initial[name] = source.value;
        else problems.push(`${at}.value: a header value cannot contain a line break`);
      } else if ('secretEnv' in source) {
        const value = env[source.secretEnv];
        if (value === undefined || value === '') {
          problems.push(`${at}.secretEnv: the environment variable ${source.secretEnv} is not set`);
        } else if (!isValidValue(clean(value))) {
          problems.push(`${at}.secretEnv: the value of ${source.secretEnv} contains a line break`);
        } else initial[name] = clean(value);
      } else {
        const { secretFile } = source;
        try {
          const onError = (error: unknown) => onReadError(name, codeOf(error));
          const first = readValue(secretFile);
          initial[name] = first;
          files.push({ name, value: new Refreshed(first, () => readValue(secretFile), onError) });
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          problems.push(
            `${at}.secretFile: ${code === undefined ? (error as Error).message : `cannot read ${secretFile} (${code})`}`,
          );
        }
      }
    }
    if (problems.length > 0) return { problems };
    return { headers: new TargetHeaders(initial, files) };
  }

  /**
   * The headers to add now; a file that cannot be read keeps its last good value. The same map
   * each call until a file's value changes (callers copy it, never modify it).
   */
  current(now?: number): Readonly<HeaderMap> {
    if (this.files.length === 0) return this.map; // no clock read on the common path
    const at = now ?? Date.now();
    let next: HeaderMap | undefined;
    for (const file of this.files) {
      const value = file.value.current(at);
      if (value === this.map[file.name]) continue;
      next ??= { ...this.map };
      next[file.name] = value;
    }
    if (next !== undefined) this.map = next;
    return this.map;
  }
}
