// Shared by the benchmarks: percentiles and the markdown table they print.
import type { Rounds } from './load.ts';

export interface Stats {
  p50: number;
  p90?: number;
  p99?: number;
}

export interface Row {
  name: string;
  outrigger: Stats;
  direct: Stats;
  note: string;
  target: string;
  /** Instead of outrigger / direct at p50, where that quotient means nothing (lateness against ~0). */
  ratio?: string;
}

export function percentiles(samples: number[]): Required<Stats> {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

export const median = (values: number[]): number => percentiles(values).p50;

const fmt = (value: number | undefined) =>
  value === undefined ? '' : value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);

export function table(rows: Row[]): string {
  const lines = [
    '| measure | outrigger p50 / p90 / p99 | direct p50 / p90 / p99 | ratio (p50) | target | how |',
    '|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    const stats = (s: Stats) =>
      [s.p50, s.p90, s.p99]
        .filter((v) => v !== undefined)
        .map(fmt)
        .join(' / ');
    const ratio = row.ratio ?? `${(row.outrigger.p50 / row.direct.p50).toFixed(2)}x`;
    lines.push(
      `| ${row.name} | ${stats(row.outrigger)} | ${stats(row.direct)} | ${ratio} | ${row.target} | ${row.note} |`,
    );
  }
  return lines.join('\n');
}

/**
 * One throughput row: the sidecar against the direct path over alternating runs
 * (medians), the note giving the pair ratios and the sidecar's CPU per unit
 * between `before` and `after`.
 */
export function throughputRow(options: {
  name: string;
  /** "message" or "call". */
  unit: string;
  target: string;
  runs: number;
  count: number;
  rounds: Rounds;
  /** How the runs differ from the plain ones, ending in "; ". */
  before?: string;
  after: string;
}): Row {
  const { rates, cpuUs } = options.rounds;
  const pairs = rates.sidecar.map((rate, i) => (rate / (rates.direct[i] as number)).toFixed(2)).join(', ');
  return {
    name: options.name,
    outrigger: { p50: median(rates.sidecar) },
    direct: { p50: median(rates.direct) },
    note: `${options.before ?? ''}median of ${options.runs} alternating runs of ${options.count} ${options.unit}s, pair ratios ${pairs}; sidecar ${median(cpuUs.sidecar).toFixed(0)} µs CPU per ${options.unit}; ${options.after}`,
    target: options.target,
  };
}

/** The floor's median rate as a multiple of the direct path's ("0.85x"), and its median CPU per unit in µs. */
export const floorFigures = ({ rates, cpuUs }: Rounds) => ({
  ratio: `${(median(rates.floor) / median(rates.direct)).toFixed(2)}x`,
  cpuUs: median(cpuUs.floor).toFixed(0),
});

/**
 * The two throughput rows of a three-way comparison (bench/load.ts throughputRounds):
 * the sidecar against the direct path, with `target`, then against the floor.
 */
export function throughputRows(options: {
  /** "publish throughput, 64 in flight (msg/s)". */
  name: string;
  /** What the floor is, and what the direct path is: "a bare node:http + amqplib bridge", "raw amqplib". */
  floor: string;
  direct: string;
  /** "message" or "call". */
  unit: string;
  target: string;
  runs: number;
  count: number;
  rounds: Rounds;
  /** More for the first row's note (peak RSS). */
  extra: string;
}): Row[] {
  const first = throughputRow({ ...options, after: options.extra });
  const floor = floorFigures(options.rounds);
  return [
    first,
    {
      // 'publish throughput, 64 in flight (msg/s)' -> 'publish throughput against the floor, <floor> (msg/s)'
      name: options.name.replace(/, 64 in flight (\(.*\))$/, ` against the floor, ${options.floor} $1`),
      outrigger: first.outrigger,
      direct: { p50: median(options.rounds.rates.floor) },
      note: `same runs; the floor reaches ${floor.ratio} ${options.direct} with ${floor.cpuUs} µs CPU per ${options.unit} (bench/floor.ts)`,
      target: 'reported (no target)',
    },
  ];
}
