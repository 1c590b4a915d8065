// Summarizes a V8 CPU profile (`node --cpu-prof`, or BENCH_CPU_PROF with
// bench/push.ts): where the samples' self time went, by function and by
// package or source file, idle and GC shown apart.
//
//   node bench/cpu-profile.ts <file.cpuprofile> [how many rows, default 25]
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, rowsArg = '25'] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: node bench/cpu-profile.ts <file.cpuprofile> [rows]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => {
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});

/** Where a frame's code lives: an npm package, a file of the sidecar, or node itself. */
function place(url: string): string {
  if (url === '') return '(native / V8)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg !== null) return pkg[1] as string;
  if (url.startsWith('node:')) return url;
  const own = /\/dist\/(.+)$/.exec(url) ?? /\/([^/]+\/[^/]+)$/.exec(url);
  return own?.[1] ?? url;
}

const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const label = ({ functionName, url, lineNumber }: Node['callFrame']) =>
  `${functionName || '(anonymous)'} ${place(url)}${url === '' ? '' : `:${lineNumber + 1}`}`;

// Inclusive ("total") time: each sample counts once for every distinct function on its stack.
const inclusive = new Map<string, number>();
for (const [id, us] of selfUs) {
  const names = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    names.add(label((byId.get(at) as Node).callFrame));
  }
  for (const name of names) inclusive.set(name, (inclusive.get(name) ?? 0) + us);
}

const functions = new Map<string, number>();
const places = new Map<string, number>();
let total = 0;
for (const [id, us] of selfUs) {
  const { callFrame } = byId.get(id) as Node;
  total += us;
  const where = place(callFrame.url);
  const name = label(callFrame);
  functions.set(name, (functions.get(name) ?? 0) + us);
  if (callFrame.functionName !== '(idle)') places.set(where, (places.get(where) ?? 0) + us);
}
const idle = [...functions].filter(([name]) => name.startsWith('(idle)')).reduce((sum, [, us]) => sum + us, 0);
const busy = total - idle;
const top = (map: Map<string, number>) =>
  [...map]
    .filter(([name]) => !/^\((idle|root)\)/.test(name))
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(rowsArg))
    .map(
      ([name, us]) =>
        `${((us / busy) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}`,
    )
    .join('\n');

console.log(
  `${file}\nbusy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms sampled; shares of busy time\n`,
);
console.log(`self time by place:\n${top(places)}\n`);
console.log(`self time by function:\n${top(functions)}\n`);
console.log(`total time (with what it calls) by function:\n${top(inclusive)}`);
