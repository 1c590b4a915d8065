// Helm for tests: the pinned binary from .tools/bin (built by `make tools`),
// with its cache, config and data in a temp dir so a test never writes to
// $HOME, every call bounded by a timeout, and renders parsed into objects.
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Test } from 'tap';
import { parseAllDocuments } from 'yaml';

export const HELM = new URL('../../../.tools/bin/helm', import.meta.url).pathname;
/** The repository's charts/ folder. */
export const CHARTS = new URL('../../../charts/', import.meta.url).pathname;

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface HelmOptions {
  /** The cluster for install, upgrade, get, ... (not needed for lint and template). */
  kubeconfigPath?: string;
}

export interface Helm {
  /** Runs helm; resolves with its exit code and output, whatever the code. */
  run(args: string[], options?: { timeoutMs?: number }): Promise<HelmResult>;
  /** Runs helm and returns stdout; rejects with stderr when it exits non-zero. */
  ok(args: string[], options?: { timeoutMs?: number }): Promise<string>;
  /** `-f FILE` arguments for these values (written to a temp file: no --set escaping). */
  values(values: object): Promise<string[]>;
  /** `helm template` of a chart, parsed; empty documents dropped. */
  template(chart: string, release: string, namespace: string, values?: object): Promise<KubernetesObject[]>;
}

/**
 * Parses a multi-document YAML stream (helm's output) into plain objects, as
 * the Go YAML that Helm and kubectl use reads it (YAML 1.1: `0440` is octal).
 * Not client-node's loadAllYaml: it maps objects onto its typed models, which
 * renames fields (`from` → `_from`) and silently drops unknown ones.
 */
export function parseObjects(text: string): KubernetesObject[] {
  return parseAllDocuments(text, { version: '1.1' })
    .map((document) => {
      if (document.errors.length > 0) throw document.errors[0];
      return document.toJS() as KubernetesObject | null;
    })
    .filter((object): object is KubernetesObject => Boolean(object?.kind));
}

export const byKind = <T extends KubernetesObject>(objects: KubernetesObject[], kind: string): T[] =>
  objects.filter((object) => object.kind === kind) as T[];

/** The one object of this kind; throws when there are none or several. */
export const one = <T extends KubernetesObject>(objects: KubernetesObject[], kind: string): T => {
  const found = byKind<T>(objects, kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, rendered ${found.length}`);
  return found[0] as T;
};

export async function createHelm(t: Test, options: HelmOptions = {}): Promise<Helm> {
  if (!existsSync(HELM)) throw new Error(`${HELM} is missing: run \`make tools\``);
  const home = await mkdtemp(join(tmpdir(), 'outrigger-helm-'));
  // Also on exit: tap's timeout ends the process without running teardowns.
  const removeNow = () => rmSync(home, { recursive: true, force: true });
  process.once('exit', removeNow);
  t.teardown(async () => {
    process.off('exit', removeNow);
    await rm(home, { recursive: true, force: true });
  });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
    // No cluster unless one is given: never the user's ~/.kube/config.
    KUBECONFIG: options.kubeconfigPath ?? join(home, 'no-cluster.kubeconfig'),
  };
  let files = 0;

  const run: Helm['run'] = (args, { timeoutMs = 60_000 } = {}) =>
    new Promise((resolve) => {
      execFile(
        HELM,
        args,
        { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
          const timedOut = error?.killed ? `\n(helm killed after ${timeoutMs} ms)` : '';
          resolve({ code, stdout, stderr: stderr + timedOut });
        },
      );
    });

  const ok: Helm['ok'] = async (args, runOptions) => {
    const result = await run(args, runOptions);
    if (result.code !== 0) throw new Error(`helm ${args.join(' ')} exited ${result.code}:\n${result.stderr}`);
    return result.stdout;
  };

  const values: Helm['values'] = async (object) => {
    const path = join(home, `values-${++files}.yaml`);
    await writeFile(path, JSON.stringify(object)); // JSON is YAML
    return ['-f', path];
  };

  return {
    run,
    ok,
    values,
    async template(chart, release, namespace, object = {}) {
      return parseObjects(await ok(['template', release, chart, '--namespace', namespace, ...(await values(object))]));
    },
  };
}
