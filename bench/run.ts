// `make bench`: every benchmark, side by side with the direct alternative in
// the same run, printed as one markdown table (copied into docs/benchmarks.md).
import { cpus, totalmem } from 'node:os';
import { benchPublish } from './publish.ts';
import { table } from './report.ts';
import { benchStartup } from './startup.ts';

const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}`;
console.log(`# Outrigger benchmarks\n\n${new Date().toISOString()} on ${machine}\n`);
const rows = [...(await benchStartup()), ...(await benchPublish())];
console.log(table(rows));
