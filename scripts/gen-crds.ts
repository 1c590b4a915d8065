// Writes the CustomResourceDefinitions, generated from the zod schemas, into
// charts/outrigger/crds/. `make crds`; `make test` fails when they drift.
import { mkdirSync, writeFileSync } from 'node:fs';
import { crdFiles } from '../sidecar/src/k8s/crd/files.ts';

const dir = new URL('../charts/outrigger/crds/', import.meta.url);
mkdirSync(dir, { recursive: true });
for (const { file, text } of crdFiles()) {
  writeFileSync(new URL(file, dir), text);
  process.stdout.write(`wrote charts/outrigger/crds/${file}\n`);
}
