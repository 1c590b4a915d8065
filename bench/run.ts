// `make bench`: every benchmark, side by side with the direct alternative in
// the same run, printed as one markdown table (copied into docs/benchmarks.md).
// Progress and per-run numbers go to stderr.
import { cpus, loadavg, totalmem } from 'node:os';
import { benchDelay } from './delay.ts';
import { benchOutbound } from './outbound.ts';
import { benchOutbox } from './outbox.ts';
import { benchPublish } from './publish.ts';
import { benchPush } from './push.ts';
import { table } from './report.ts';
import { benchStartup } from './startup.ts';
import { benchTracing } from './tracing.ts';

const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}`;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
console.log(`# Outrigger benchmarks\n\n${new Date().toISOString()} on ${machine}; load average at start ${load()}\n`);
const rows = [
  ...(await benchStartup()),
  ...(await benchPublish()),
  ...(await benchTracing()),
  ...(await benchPush()),
  ...(await benchDelay()),
  ...(await benchOutbound()),
  ...(await benchOutbox()),
];
console.log(table(rows));
console.log(`\nload average at the end ${load()}`);
