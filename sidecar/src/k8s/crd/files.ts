// The CRDs as the chart ships them: one YAML file per kind.
import { stringify } from 'yaml';
import { KINDS, type Kind } from '../resources.ts';
import { customResourceDefinition } from './definitions.ts';

const HEADER = "# Generated from the sidecar's zod schemas by scripts/gen-crds.ts (make crds). Do not edit.\n";

export function crdFiles(): { file: string; text: string }[] {
  return (Object.keys(KINDS) as Kind[]).map((kind) => {
    const crd = customResourceDefinition(kind);
    return { file: `${crd.metadata.name}.yaml`, text: HEADER + stringify(crd, { lineWidth: 0 }) };
  });
}
