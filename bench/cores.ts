// Giving the process under test a core of its own, as a pod gives its sidecar
// container CPU of its own: on this two-core machine the sidecar otherwise
// takes every cycle it uses from the client and the upstream (or the broker)
// it is measured against. `taskset -a` pins every thread of a process (V8's
// and libuv's too); the pins are undone afterwards.
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

const CORES = availableParallelism();
const ALL = `0-${CORES - 1}`;
/** The proxy under test gets the last core; the rest of the run shares the others. */
const OWN = String(CORES - 1);
const OTHERS = CORES > 2 ? `0-${CORES - 2}` : '0';

/** Why the machine cannot pin, or undefined when it can. */
export function cannotPin(): string | undefined {
  if (CORES < 2) return 'one core only';
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'no taskset (util-linux)';
  }
}

const pin = (pid: number, cores: string) =>
  execFileSync('taskset', ['-a', '-cp', cores, String(pid)], { stdio: 'ignore' });

/**
 * Runs `round` with each of `apart` on a core of its own (the same one: they
 * take turns) and `rest` (this process included) on the other cores.
 */
export async function withOwnCore<T>(apart: number[], rest: number[], round: () => Promise<T>): Promise<T> {
  const others = [process.pid, ...rest];
  try {
    for (const pid of apart) pin(pid, OWN);
    for (const pid of others) pin(pid, OTHERS);
    return await round();
  } finally {
    for (const pid of [...apart, ...others]) {
      try {
        pin(pid, ALL);
      } catch {
        // gone already
      }
    }
  }
}
