// The sidecar's own undici (8.x), value and types, for the benchmark code that
// must call like the sidecar does: the root's node_modules holds undici 6,
// which tap's dependencies bring.
import { createRequire } from 'node:module';

type SidecarUndici = typeof import('../sidecar/node_modules/undici/index.js');

export const { Pool } = createRequire(new URL('../sidecar/package.json', import.meta.url))('undici') as SidecarUndici;
