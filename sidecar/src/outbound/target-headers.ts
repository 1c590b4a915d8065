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

/** The header value in a file, or why there is none (`unusable`, or the read's error code). */
function readValue(path: string): string {
  const value = clean(readFileSync(path, 'utf8'));
  if (value === '' || !isValidValue(value)) throw new Error('unusable');
  return value;
}

export class TargetHeaders {
  private readonly fixed: HeaderMap;
  private readonly files: FileHeader[];

  private constructor(fixed: HeaderMap, files: FileHeader[]) {
    this.fixed = fixed;
    this.files = files;
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
    const fixed: HeaderMap = {};
    const files: FileHeader[] = [];
    for (const [given, source] of Object.entries(target.headers)) {
      const name = given.toLowerCase();
      const at = `${field}.headers.${given}`;
      if ('value' in source) {
        if (isValidValue(source.value)) fixed[name] = source.value;
        else problems.push(`${at}.value: a header value cannot contain a line break`);
      } else if ('secretEnv' in source) {
        const value = env[source.secretEnv];
        if (value === undefined || value === '') {
          problems.push(`${at}.secretEnv: the environment variable ${source.secretEnv} is not set`);
        } else if (!isValidValue(clean(value))) {
          problems.push(`${at}.secretEnv: the value of ${source.secretEnv} contains a line break`);
        } else fixed[name] = clean(value);
      } else {
        try {
          const value = clean(readFileSync(source.secretFile, 'utf8'));
          if (value === '') problems.push(`${at}.secretFile: ${source.secretFile} is empty`);
          else if (!isValidValue(value))
            problems.push(`${at}.secretFile: ${source.secretFile} has a line break inside`);
          else {
            const { secretFile } = source;
            const onError = (error: unknown) =>
              onReadError(name, (error as NodeJS.ErrnoException).code ?? (error as Error).message);
            files.push({ name, value: new Refreshed(value, () => readValue(secretFile), onError) });
          }
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code ?? 'error';
          problems.push(`${at}.secretFile: cannot read ${source.secretFile} (${code})`);
        }
      }
    }
    if (problems.length > 0) return { problems };
    return { headers: new TargetHeaders(fixed, files) };
  }

  /** The headers to add now; a file that cannot be read keeps its last good value. */
  current(now = Date.now()): HeaderMap {
    if (this.files.length === 0) return this.fixed;
    const headers: HeaderMap = { ...this.fixed };
    for (const file of this.files) headers[file.name] = file.value.current(now);
    return headers;
  }
}
