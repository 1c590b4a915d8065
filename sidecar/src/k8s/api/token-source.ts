// A bearer token for the API server: fixed (a kubeconfig's `token`) or read
// from a file (the pod's ServiceAccount token, a kubeconfig's `tokenFile`).
// The kubelet rotates a projected ServiceAccount token long before it expires
// (bound tokens live about an hour), so a file is read again once its copy is
// older than a minute, as client-go does; a token read once at startup would
// stop working after an hour.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

export interface TokenSource {
  token(): Promise<string>;
}

export class StaticToken implements TokenSource {
  private readonly value: string;

  constructor(value: string) {
    this.value = value;
  }

  async token(): Promise<string> {
    return this.value;
  }
}

export interface FileTokenOptions {
  /** How old a copy may be before the file is read again: 60 s, as client-go. */
  maxAgeMs?: number;
  /** The clock (tests move it). */
  now?: () => number;
}

export class FileToken implements TokenSource {
  readonly path: string;
  private readonly maxAgeMs: number;
  private readonly now: () => number;
  private value: string;
  private readAt: number;
  private reading: Promise<string> | undefined;

  /** Reads the file now, so that a missing or empty one fails at startup (throws). */
  constructor(path: string, options: FileTokenOptions = {}) {
    this.path = path;
    this.maxAgeMs = options.maxAgeMs ?? 60_000;
    this.now = options.now ?? Date.now;
    this.value = FileToken.parse(readFileSync(path, 'utf8'), path);
    this.readAt = this.now();
  }

  async token(): Promise<string> {
    if (this.now() - this.readAt < this.maxAgeMs) return this.value;
    // One read for all the calls that find the copy old at the same moment.
    this.reading ??= this.refresh().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async refresh(): Promise<string> {
    try {
      this.value = FileToken.parse(await readFile(this.path, 'utf8'), this.path);
    } catch {
      // The kubelet swaps the file atomically, so a failed read is a passing hiccup (or the token is gone
      // for good, which the API server's 401 will say): the last token stays until the next attempt.
    }
    this.readAt = this.now();
    return this.value;
  }

  private static parse(text: string, path: string): string {
    const token = text.trim();
    if (token === '') throw new Error(`${path} is empty`);
    return token;
  }
}
