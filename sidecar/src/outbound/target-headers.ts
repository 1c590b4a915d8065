// A target's configured headers ({value}, {secretEnv}, {secretFile}): added by
// the sidecar to every call, never logged, never echoed. Environment values
// are read once (they cannot change under a running process); files are read
// again when older than FILE_TTL_MS, so a rotated Kubernetes secret (its volume
// is updated in place) is picked up without a restart. Anything missing at
// startup is a configuration error naming the field (Outbound.create, in outbound.ts).
import { readFileSync } from 'node:fs';
import type { Target } from '../config/schema.ts';
import type { HeaderMap } from './headers.ts';

const FILE_TTL_MS = 2_000;

interface FileHeader {
  name: string;
  path: string;
  value: string;
  readAt: number;
}

/** Secret files often end with a newline; a header value cannot hold one. */
const clean = (text: string) => text.replace(/[\r\n]+$/, '').trim();
const isValidValue = (value: string) => !/[\r\n\0]/.test(value);

export class TargetHeaders {
  private readonly fixed: HeaderMap;
  private readonly files: FileHeader[];
  private readonly onReadError: (name: string, code: string) => void;

  private constructor(fixed: HeaderMap, files: FileHeader[], onReadError: (name: string, code: string) => void) {
    this.fixed = fixed;
    this.files = files;
    this.onReadError = onReadError;
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
          else files.push({ name, path: source.secretFile, value, readAt: Date.now() });
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code ?? 'error';
          problems.push(`${at}.secretFile: cannot read ${source.secretFile} (${code})`);
        }
      }
    }
    if (problems.length > 0) return { problems };
    return { headers: new TargetHeaders(fixed, files, onReadError) };
  }

  /** The headers to add now; a file that cannot be read keeps its last good value. */
  current(now = Date.now()): HeaderMap {
    if (this.files.length === 0) return this.fixed;
    const headers: HeaderMap = { ...this.fixed };
    for (const file of this.files) {
      if (now - file.readAt >= FILE_TTL_MS) this.reread(file, now);
      headers[file.name] = file.value;
    }
    return headers;
  }

  private reread(file: FileHeader, now: number): void {
    file.readAt = now;
    try {
      const value = clean(readFileSync(file.path, 'utf8'));
      if (value !== '' && isValidValue(value)) file.value = value;
      else this.onReadError(file.name, 'unusable');
    } catch (error) {
      this.onReadError(file.name, (error as NodeJS.ErrnoException).code ?? 'error');
    }
  }
}
