// retry-after: delay-seconds, or an HTTP date in any of its three forms, read as UTC whatever the machine's zone.
// (The back-off itself, and the common cases of retry-after, are in delivery.test.ts.)
import t from 'tap';
import { parseHttpDate, parseRetryAfter } from './backoff.ts';

// A zone west of UTC, where local time is 5 hours off (Node reads TZ again when it is set).
process.env.TZ = 'America/New_York';

/** 1994-11-06 08:49:37 UTC, the example of RFC 9110 §5.6.7. */
const EXAMPLE = Date.UTC(1994, 10, 6, 8, 49, 37);

t.test('the test runs in a zone where local time is not UTC', async (t) => {
  t.equal(new Date(EXAMPLE).getTimezoneOffset(), 300, 'New York is 5 hours behind UTC in November');
  t.not(Date.parse('Sun Nov  6 08:49:37 1994'), EXAMPLE, 'Date.parse reads the asctime form in local time');
});

t.test('the three forms of an HTTP date are one and the same instant, in UTC', async (t) => {
  const now = Date.UTC(2026, 0, 1);
  t.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', now), EXAMPLE, 'IMF-fixdate');
  t.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', now), EXAMPLE, 'RFC 850');
  t.equal(parseHttpDate('Sun Nov  6 08:49:37 1994', now), EXAMPLE, 'asctime');
  t.equal(parseHttpDate('Sun Nov 16 08:49:37 1994', now), Date.UTC(1994, 10, 16, 8, 49, 37), 'asctime, two-digit day');
  t.equal(parseHttpDate('sun, 06 nov 1994 08:49:37 gmt', now), EXAMPLE, 'names in any case');
  t.equal(parseHttpDate('Thu, 1 Jan 2026 00:00:10 GMT', now), Date.UTC(2026, 0, 1, 0, 0, 10), 'a one-digit day');
});

t.test("RFC 850's two-digit year is the nearest one not more than 50 years ahead", async (t) => {
  const now = Date.UTC(2026, 0, 1);
  t.equal(parseHttpDate('Thursday, 01-Jan-26 00:00:10 GMT', now), Date.UTC(2026, 0, 1, 0, 0, 10));
  t.equal(parseHttpDate('Saturday, 01-Jan-76 00:00:00 GMT', now), Date.UTC(2076, 0, 1), '50 years ahead');
  t.equal(parseHttpDate('Friday, 01-Jan-77 00:00:00 GMT', now), Date.UTC(1977, 0, 1), 'more than 50: the past');
  // The instants are compared, not just the years.
  t.equal(
    parseHttpDate('Thursday, 01-Jan-76 00:00:01 GMT', now),
    Date.UTC(1976, 0, 1, 0, 0, 1),
    'a second more than 50 years ahead: the past',
  );
  const midYear = Date.UTC(2026, 6, 1);
  t.equal(parseHttpDate('Wednesday, 01-Jul-76 00:00:00 GMT', midYear), Date.UTC(2076, 6, 1), 'exactly 50 years');
  t.equal(parseHttpDate('Tuesday, 30-Jun-76 00:00:00 GMT', midYear), Date.UTC(2076, 5, 30), 'within 50 years');
  t.equal(parseHttpDate('Wednesday, 02-Jul-76 00:00:00 GMT', midYear), Date.UTC(1976, 6, 2), 'a day past 50 years');
});

t.test('a leap second (60) is read as 59, not refused nor rolled over into the next day', async (t) => {
  const now = Date.UTC(2026, 0, 1);
  const last = Date.UTC(2016, 11, 31, 23, 59, 59);
  t.equal(parseHttpDate('Sat, 31 Dec 2016 23:59:60 GMT', now), last, 'IMF-fixdate');
  t.equal(parseHttpDate('Saturday, 31-Dec-16 23:59:60 GMT', now), last, 'RFC 850');
  t.equal(parseHttpDate('Sat Dec 31 23:59:60 2016', now), last, 'asctime');
  t.equal(parseHttpDate('Tue, 30 Jun 2015 23:59:60 GMT', now), Date.UTC(2015, 5, 30, 23, 59, 59), 'end of June');
  t.equal(parseRetryAfter('Sat, 31 Dec 2016 23:59:60 GMT', last - 5_000), 5_000, 'retry-after');
  t.equal(parseHttpDate('Sat, 31 Dec 2016 23:59:61 GMT', now), undefined, '61 is refused');
});

t.test('what is not an HTTP date is not read as one', async (t) => {
  for (const text of [
    'Sun, 06 Nov 1994 08:49:37', // no zone
    'Sun, 06 Nov 1994 08:49:37 +0100',
    'Sun, 31 Feb 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 24:00:00 GMT',
    'Sun, 06 Foo 1994 08:49:37 GMT',
    '1994-11-06T08:49:37Z',
    'Sun Nov  6 08:49:37 1994 GMT',
    'soon',
  ]) {
    t.equal(parseHttpDate(text), undefined, text);
  }
});

t.test('retry-after as an HTTP date is the time until it, in any form and zone', async (t) => {
  const now = EXAMPLE - 10_000;
  for (const date of ['Sun, 06 Nov 1994 08:49:37 GMT', 'Sunday, 06-Nov-94 08:49:37 GMT', 'Sun Nov  6 08:49:37 1994']) {
    t.equal(parseRetryAfter(date, now), 10_000, date);
    t.equal(parseRetryAfter(` ${date} `, now), 10_000, `${date}, with spaces around`);
  }
  t.equal(parseRetryAfter('Sun Nov  6 08:49:37 1994', EXAMPLE + 60_000), 0, 'past: at once');
  t.equal(parseRetryAfter('Sun Nov  6 08:49:37 1994 GMT', now), undefined, 'none of the three forms: unreadable');
  t.equal(parseRetryAfter('120', now), 120_000, 'delay-seconds');
});
