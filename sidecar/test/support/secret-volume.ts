// A Kubernetes Secret volume as the kubelet writes it, for tests of files
// rotated in place (a target's TLS files): each file is a link into `..data`,
// itself a link to a directory of the current version, swapped in one rename.
// And calls made while a rotation takes effect, each status noted.
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { until } from './wait.ts';

export interface SecretVolume {
  /** Where the files are (`dir/tls.crt` and so on). */
  dir: string;
  /** Writes the next version of the files and swaps `..data` to it, as the kubelet does when the Secret changes. */
  update(next: Record<string, string>): void;
}

/** A volume in a new directory under `parent`, holding `files` (name to text) as its first version. */
export function secretVolume(parent: string, files: Record<string, string>): SecretVolume {
  const volume = mkdtempSync(join(parent, 'secret-'));
  let version = 0;
  const update = (next: Record<string, string>) => {
    const versionDir = `..${++version}`;
    mkdirSync(join(volume, versionDir));
    for (const [name, text] of Object.entries(next)) writeFileSync(join(volume, versionDir, name), text);
    symlinkSync(versionDir, join(volume, '..data_tmp'));
    renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
  };
  update(files);
  for (const name of Object.keys(files)) symlinkSync(join('..data', name), join(volume, name));
  return { dir: volume, update };
}

/** Calls the target every 50 ms until `done` holds, noting every status (0: the call itself failed). */
export async function callUntil(
  call: (path: string) => Promise<{ status: number }>,
  what: string,
  done: () => boolean,
): Promise<number[]> {
  const statuses: number[] = [];
  await until(
    what,
    async () => {
      statuses.push(
        await call('/v1/outbound/api/again').then(
          ({ status }) => status,
          () => 0,
        ),
      );
      return done();
    },
    { intervalMs: 50, timeoutMs: 10_000 },
  );
  return statuses;
}
