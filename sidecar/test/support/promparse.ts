// Parses a /metrics page with the Prometheus project's own text parser (the Go
// program beside this file), so tests check the exposition against the real
// thing rather than a regex. The program is built once into .tools/bin and
// rebuilt only when its sources change (a stamp holds their hash).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SOURCE = new URL('./promparse/', import.meta.url);
const ROOT = new URL('../../../', import.meta.url);
const BINARY = new URL('.tools/bin/promparse', ROOT);
const STAMP = new URL('.tools/stamps/promparse', ROOT);
/** The first build downloads github.com/prometheus/common through the Go module proxy. */
const BUILD_TIMEOUT_MS = 5 * 60_000;

export interface ParsedMetric {
  labels: Record<string, string>;
  /** Counters, gauges, untyped. */
  value?: number | string;
  /** Histograms and summaries. */
  count?: number;
  sum?: number | string;
  /** Cumulative, +Inf included; non-finite numbers come as strings ("+Inf"). */
  buckets?: { le: number | string; count: number }[];
}

export interface ParsedFamily {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  metrics: ParsedMetric[];
}

let built: Promise<string> | undefined;

/** The path of the promparse binary, built if missing or out of date. */
export function promparse(): Promise<string> {
  built ??= build();
  return built;
}

async function build(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum', 'main.go']) hash.update(await readFile(new URL(file, SOURCE)));
  const want = hash.digest('hex');
  const have = await readFile(STAMP, 'utf8').catch(() => '');
  const binary = BINARY.pathname;
  if (
    have === want &&
    (await readFile(BINARY).then(
      () => true,
      () => false,
    ))
  )
    return binary;
  await mkdir(new URL('.', BINARY), { recursive: true });
  await mkdir(new URL('.', STAMP), { recursive: true });
  // Built under a name of its own and renamed, so suites building at the same moment never run a half-written file.
  const partial = `${binary}.${process.pid}`;
  await run('go', ['build', '-o', partial, '.'], {
    cwd: SOURCE.pathname,
    timeout: BUILD_TIMEOUT_MS,
    env: { ...process.env, CGO_ENABLED: '0' },
  });
  await rename(partial, binary);
  await writeFile(STAMP, want);
  return binary;
}

/** The families on `page`, sorted by name; rejects with the parser's error when Prometheus could not read it. */
export async function parseExposition(page: string): Promise<ParsedFamily[]> {
  const binary = await promparse();
  return new Promise((resolve, reject) => {
    const child = execFile(binary, { maxBuffer: 64 * 1024 * 1024, timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`Prometheus could not parse the page: ${stderr.trim() || error.message}`));
      else resolve(JSON.parse(stdout) as ParsedFamily[]);
    });
    child.stdin?.end(page);
  });
}
