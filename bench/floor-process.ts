// Starting a benchmark's helper process (the floor, the upstream) and waiting
// until it listens: each tells its parent over IPC.
import { type ChildProcess, fork } from 'node:child_process';

export async function forkListening(module: URL, args: string[]): Promise<ChildProcess> {
  const child = fork(module.pathname, args, { stdio: 'inherit' });
  await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`${module.pathname} exited (${code}) before listening`)));
  });
  return child;
}

/** bench/floor.ts on `port`: a bare bridge to the broker (`publish`) or to an upstream origin (`proxy`). */
export const startFloor = (mode: 'publish' | 'proxy', port: number, to: string): Promise<ChildProcess> =>
  forkListening(new URL('./floor.ts', import.meta.url), [mode, String(port), to]);
