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
