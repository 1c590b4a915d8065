// The chart ships the CRDs generated from the zod schemas; change a schema
// without running `make crds` and this fails.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { crdFiles } from './files.ts';

const dir = new URL('../../../../charts/outrigger/crds/', import.meta.url);

for (const { file, text } of crdFiles()) {
  t.test(file, async (t) => {
    let shipped = '';
    try {
      shipped = readFileSync(new URL(file, dir), 'utf8');
    } catch {
      t.fail(`charts/outrigger/crds/${file} is missing: run \`make crds\``);
      return;
    }
    t.equal(shipped, text, `charts/outrigger/crds/${file} matches the schemas (if not: run \`make crds\`)`);
  });
}
