// How long a failed delivery waits in the broker before its next attempt.

export interface BackoffPolicy {
  initial: number;
  max: number;
  multiplier: number;
  /** 0: exactly the exponential value; 1: anywhere between 0 and it ("full jitter"). */
  jitter: number;
}

/**
 * The wait after attempt `failedAttempt` (1-based) failed: initial × multiplier^(n-1),
 * capped at max, minus a random share of up to `jitter` of it, so that
 * replicas which failed together do not retry together.
 */
export function backoffMs(policy: BackoffPolicy, failedAttempt: number, random: () => number = Math.random): number {
  const exponential = policy.initial * policy.multiplier ** Math.max(0, failedAttempt - 1);
  const capped = Math.min(policy.max, exponential);
  return Math.round(capped * (1 - policy.jitter * random()));
}

/**
 * A `retry-after` header (delay-seconds or an HTTP date) in milliseconds;
 * undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(text)) return Number(text) * 1000;
  const date = parseHttpDate(text.trim(), now);
  if (date === undefined) return undefined;
  return Math.max(0, date - now);
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
/** IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT` (a one-digit day is taken too). */
const IMF_FIXDATE = /^[a-z]{3}, (\d{1,2}) ([a-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/i;
/** RFC 850 (obsolete): `Sunday, 06-Nov-94 08:49:37 GMT`. */
const RFC_850 = /^[a-z]{6,9}, (\d{1,2})-([a-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/i;
/** C's asctime() (obsolete): `Sun Nov  6 08:49:37 1994`, which names no zone. */
const ASCTIME = /^[a-z]{3} ([a-z]{3}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/i;

/**
 * An HTTP date in any of its three forms (RFC 9110 §5.6.7), in ms since the
 * epoch; undefined when it is none of them. All three are UTC: Date.parse
 * would read the asctime form, which names no zone, in the machine's local time.
 */
export function parseHttpDate(text: string, now: number = Date.now()): number | undefined {
  const imf = IMF_FIXDATE.exec(text);
  if (imf !== null) return utc(Number(imf[3]), imf[2], imf.slice(1, 2).concat(imf.slice(4)));
  const rfc850 = RFC_850.exec(text);
  if (rfc850 !== null) {
    // A date more than 50 years ahead (the instant, not just its year) is in the last past year that ends in
    // those digits (RFC 9110 §5.6.7).
    const thisYear = new Date(now).getUTCFullYear();
    const year = thisYear - (thisYear % 100) + Number(rfc850[3]);
    const dayAndTime = rfc850.slice(1, 2).concat(rfc850.slice(4));
    const date = utc(year, rfc850[2], dayAndTime);
    const fiftyYearsAhead = new Date(now);
    fiftyYearsAhead.setUTCFullYear(thisYear + 50);
    if (date !== undefined && date > fiftyYearsAhead.getTime()) return utc(year - 100, rfc850[2], dayAndTime);
    return date;
  }
  const asctime = ASCTIME.exec(text);
  if (asctime !== null) return utc(Number(asctime[6]), asctime[1], asctime.slice(2, 6));
  return undefined;
}

/**
 * Date.UTC of a year, a month's name and [day, hour, minute, second], when they are in range. A leap second
 * (60) is read as 59: the same minute, where rolling over into the next one would leave 31 Dec for 1 Jan.
 */
function utc(year: number, month: string | undefined, dayAndTime: string[]): number | undefined {
  const monthIndex = MONTHS.indexOf(String(month).toLowerCase());
  const [day, hour, minute, second] = dayAndTime.map(Number) as [number, number, number, number];
  if (monthIndex < 0 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  const date = new Date(Date.UTC(2000, monthIndex, day, hour, minute, Math.min(second, 59)));
  date.setUTCFullYear(year); // Date.UTC reads years 0-99 as 1900-1999
  return date.getUTCMonth() === monthIndex ? date.getTime() : undefined; // not 31 Feb
}
