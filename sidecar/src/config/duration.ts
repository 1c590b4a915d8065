// Durations as people write them in YAML and query strings: "250ms", "30s",
// "1h30m", "7d", or ISO 8601 ("PT10M", "P7D", "P1DT2H"). Returned in milliseconds.

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
type Unit = keyof typeof UNIT_MS;

const SIMPLE_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
const SIMPLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const ISO =
  /^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** The pattern a duration string must match; also published in JSON Schemas and CRDs. */
export const DURATION_PATTERN = `^((\\d+(\\.\\d+)?(ms|s|m|h|d))+|P(\\d+(\\.\\d+)?W)?(\\d+(\\.\\d+)?D)?(T(\\d+(\\.\\d+)?H)?(\\d+(\\.\\d+)?M)?(\\d+(\\.\\d+)?S)?)?)$`;

/** Parses a duration into milliseconds (rounded to whole ms), or returns undefined if it is not one. */
export function parseDuration(text: string): number | undefined {
  if (SIMPLE.test(text)) {
    let total = 0;
    for (const [, amount, unit] of text.matchAll(SIMPLE_PART)) {
      total += Number(amount) * UNIT_MS[unit as Unit];
    }
    return Math.round(total);
  }
  const iso = ISO.exec(text);
  if (iso === null || text === 'P' || text.endsWith('T')) return undefined;
  const [, weeks, days, hours, minutes, seconds] = iso.map((part) => Number(part ?? 0));
  return Math.round(
    (weeks ?? 0) * 7 * UNIT_MS.d +
      (days ?? 0) * UNIT_MS.d +
      (hours ?? 0) * UNIT_MS.h +
      (minutes ?? 0) * UNIT_MS.m +
      (seconds ?? 0) * UNIT_MS.s,
  );
}

/** Formats milliseconds the way a person would write them back ("1500ms", "30s", "7d"). */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms >= UNIT_MS[unit] && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
