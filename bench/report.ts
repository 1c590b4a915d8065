// Shared by the benchmarks: percentiles and the markdown table they print.

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
