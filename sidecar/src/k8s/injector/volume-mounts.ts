// outrigger.dev/volume-mounts: volumes the pod already declares, mounted into
// the sidecar ("weather-token:/var/run/secrets/weather,ca:/etc/ca"), so that
// the files a target reads (secretFile, tls.caFile ...) can come from a Secret.
// Read-only, always: the sidecar has no business writing to the app's volumes.
import { posix } from 'node:path';
import type { Pod } from './pod.ts';
import { OWN_MOUNT_PATHS, RESERVED_PATHS } from './sidecar-container.ts';

export interface VolumeMount {
  /** A volume in the pod's spec.volumes. */
  volume: string;
  /** Absolute and normalised, as the annotation has it (/var/run stays /var/run: the runtime follows the links). */
  path: string;
}

const ENTRY_HINT = "expected VOLUME:PATH (a volume in the pod's spec.volumes and an absolute path in the sidecar)";

/** The mounts in the annotation's order; a problem for each bad entry, naming the annotation and the entry. */
export function readVolumeMounts(
  annotation: string,
  value: string,
  pod: Pod,
): { mounts: VolumeMount[]; problems: string[] } {
  const problems: string[] = [];
  if (value.trim() === '') {
    return { mounts: [], problems: [`${annotation}: "" is not valid: ${ENTRY_HINT}, separated by commas`] };
  }
  const declared = (pod.spec.volumes ?? []).map((volume) => volume.name);
  const mounts: (VolumeMount & { entry: string })[] = [];
  for (const raw of value.split(',')) {
    const entry = raw.trim();
    if (entry === '') {
      problems.push(`${annotation}: ${JSON.stringify(value)} is not valid: an empty entry (a stray ",")`);
      continue;
    }
    const bad = (why: string) => problems.push(`${annotation}: ${JSON.stringify(entry)} is not valid: ${why}`);
    const colon = entry.indexOf(':');
    const volume = colon < 0 ? '' : entry.slice(0, colon).trim();
    const path = colon < 0 ? '' : entry.slice(colon + 1).trim();
    if (volume === '' || path === '') {
      bad(ENTRY_HINT);
      continue;
    }
    if (!declared.includes(volume)) {
      const has = declared.length === 0 ? 'it declares none' : `it declares ${declared.join(', ')}`;
      bad(`the pod has no volume "${volume}" in spec.volumes (${has})`);
    }
    const pathProblem = checkPath(path, mounts);
    if (pathProblem !== undefined) bad(pathProblem);
    else mounts.push({ volume, path, entry });
  }
  return { mounts: mounts.map(({ volume, path }) => ({ volume, path })), problems };
}

/** Why the sidecar cannot have a volume at this path, given the annotation's entries before it. */
function checkPath(path: string, earlier: readonly (VolumeMount & { entry: string })[]): string | undefined {
  if (!path.startsWith('/')) return `${path} is not an absolute path`;
  if (path === '/') return "the path may not be /, the sidecar's root";
  if (posix.normalize(path) !== path || path.endsWith('/')) {
    return `${path} is not a normalised path (no ".", ".." or empty segments, no trailing "/")`;
  }
  // Nested is refused too: a mount inside a read-only volume needs a directory the runtime cannot make there, one
  // over the sidecar's own (or over the image's and the kubelet's files) would hide them, and /tmp is the
  // sidecar's scratch space. Compared as written, and again where the runtime puts them, after the image's links:
  // a:/var/run/x and b:/run/x/y are nested, /run/secrets is over the token the sidecar has at /var/run/secrets/...,
  // and /bin/x is in /usr. As written still counts: /var is over /var/run/secrets/..., though /var is not over
  // /run, where the link takes the token.
  const meet = (a: string, b: string) => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
  const overlap = (other: string) => meet(path, other) || meet(inImage(path), inImage(other));
  // Said when only a link makes two paths meet: neither text is on, in or over the other.
  const link = (other: string) => {
    if (meet(path, other)) return '';
    const through = linkOf(path) ?? linkOf(other);
    return through === undefined ? '' : ` (${through.link} is a link to ${through.target} in the image)`;
  };
  const own = OWN_MOUNT_PATHS.find((mount) => overlap(mount.path));
  if (own !== undefined) return `${path} overlaps the sidecar's own mount ${own.path}, ${own.what}${link(own.path)}`;
  const reserved = RESERVED_PATHS.find((system) => overlap(system.path));
  if (reserved !== undefined) return `${path} overlaps ${reserved.path}, ${reserved.what}${link(reserved.path)}`;
  const other = earlier.find((mount) => overlap(mount.path));
  if (other !== undefined) {
    return other.path === path
      ? `${path} is mounted twice`
      : `${path} overlaps ${JSON.stringify(other.entry)}${link(other.path)}`;
  }
  return undefined;
}

/**
 * The links of the sidecar's image (node's Debian bookworm-slim) to a directory of another name. /var/run is one
 * to /run. And bookworm merges / into /usr (debootstrap's merged-usr, its default since bookworm): /bin, /sbin
 * and /lib are links to /usr's, on amd64 /lib32, /lib64 and /libx32 too (on arm64 there are none of those:
 * refusing them there as well costs nothing).
 */
const IMAGE_LINKS: readonly { link: string; target: string }[] = [
  { link: '/var/run', target: '/run' },
  ...['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'].map((link) => ({ link, target: `/usr${link}` })),
];

/** The link a path goes through, if any (the targets hold no further link). */
function linkOf(path: string): { link: string; target: string } | undefined {
  return IMAGE_LINKS.find(({ link }) => path === link || path.startsWith(`${link}/`));
}

/** Where the runtime mounts a path: it follows the image's links. */
function inImage(path: string): string {
  const through = linkOf(path);
  return through === undefined ? path : `${through.target}${path.slice(through.link.length)}`;
}
