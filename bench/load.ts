// Shared by the benchmarks: driving a call at a fixed concurrency, and reading
// what a process uses from /proc.
import { readFileSync } from 'node:fs';

/** Runs `once` `count` times, `concurrency` at a time; returns each latency (ms) and the rate (per second). */
export async function drive(count: number, concurrency: number, once: () => Promise<void>) {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next += 1;
        const t0 = performance.now();
        await once();
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { latencies, rate: count / ((performance.now() - started) / 1000) };
}

/**
 * `calls` calls one at a time on every side, in `blocks` blocks per side (the
 * first `calls % blocks` of them one call longer), the order of the sides
 * rotated from block to block. In a fixed order, whichever side ran right
 * after the direct path had its p99 doubled (measured in the outbound
 * benchmark, after raw undici: the floor's or the sidecar's, whichever it
 * was); rotated, every side takes every place alike.
 */
export async function interleaved<K extends string>(
  sides: Record<K, () => Promise<void>>,
  calls: number,
  blocks: number,
): Promise<Record<K, number[]>> {
  const names = Object.keys(sides) as K[];
  const latencies = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>;
  for (let i = 0; i < blocks; i++) {
    const block = Math.floor(calls / blocks) + (i < calls % blocks ? 1 : 0);
    for (let j = 0; j < names.length; j++) {
      const name = names[(i + j) % names.length] as K;
      latencies[name].push(...(await drive(block, 1, sides[name])).latencies);
    }
  }
  return latencies;
}

export interface Usage {
  /** Resident set, MB. */
  rssMb: number;
  /** Of it, anonymous memory (without the mapped node binary), MB. */
  anonMb: number;
  /** User + system CPU time used so far, ms. */
  cpuMs: number;
}

/** What process `pid` uses now; zeros and NaN once it is gone. */
export function usage(pid: number): Usage {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th (clock ticks of 10 ms).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return {
      rssMb: kb('VmRSS') / 1024,
      anonMb: kb('RssAnon') / 1024,
      cpuMs: (Number(fields[11]) + Number(fields[12])) * 10,
    };
  } catch {
    return { rssMb: 0, anonMb: 0, cpuMs: Number.NaN };
  }
}

/** A process on one side of a comparison, and one call through it. */
export interface Side {
  pid: number;
  once: () => Promise<void>;
}

/** What throughputRounds measured: each side's rate per round, CPU per call (µs), the sidecar's peak RSS (MB). */
export interface Rounds {
  rates: { direct: number[]; sidecar: number[]; floor: number[] };
  cpuUs: { sidecar: number[]; floor: number[] };
  peakRss: { all: number; anon: number };
}

/**
 * Throughput at 64 in flight, `runs` alternating rounds of the direct path,
 * the sidecar and the floor (`between` after each round).
 */
export async function throughputRounds(options: {
  runs: number;
  count: number;
  direct: () => Promise<void>;
  sidecar: Side;
  floor: Side;
  between?: () => Promise<void>;
}): Promise<Rounds> {
  const { runs, count, direct, sidecar, floor, between } = options;
  const rates: Rounds['rates'] = { direct: [], sidecar: [], floor: [] };
  const cpuUs: Rounds['cpuUs'] = { sidecar: [], floor: [] };
  const peakRss = { all: 0, anon: 0 };
  const measured = async (side: Side) => {
    const before = usage(side.pid).cpuMs;
    const { rate } = await drive(count, 64, side.once);
    return { rate, cpuUs: ((usage(side.pid).cpuMs - before) / count) * 1000 };
  };
  for (let run = 0; run < runs; run++) {
    rates.direct.push((await drive(count, 64, direct)).rate);
    const sampler = setInterval(() => {
      const now = usage(sidecar.pid);
      peakRss.all = Math.max(peakRss.all, now.rssMb);
      peakRss.anon = Math.max(peakRss.anon, now.anonMb);
    }, 100);
    const side = await measured(sidecar);
    clearInterval(sampler);
    rates.sidecar.push(side.rate);
    cpuUs.sidecar.push(side.cpuUs);
    const bare = await measured(floor);
    rates.floor.push(bare.rate);
    cpuUs.floor.push(bare.cpuUs);
    await between?.();
  }
  return { rates, cpuUs, peakRss };
}
