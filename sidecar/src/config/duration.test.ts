import t from 'tap';
import { formatDuration, parseDuration } from './duration.ts';

t.test('simple and composite durations', async (t) => {
  t.equal(parseDuration('250ms'), 250);
  t.equal(parseDuration('30s'), 30_000);
  t.equal(parseDuration('1.5s'), 1_500);
  t.equal(parseDuration('10m'), 600_000);
  t.equal(parseDuration('2h'), 7_200_000);
  t.equal(parseDuration('7d'), 604_800_000);
  t.equal(parseDuration('1h30m'), 5_400_000);
  t.equal(parseDuration('0s'), 0);
});

t.test('ISO 8601 durations', async (t) => {
  t.equal(parseDuration('PT10M'), 600_000);
  t.equal(parseDuration('P7D'), 604_800_000);
  t.equal(parseDuration('P1DT2H'), 93_600_000);
  t.equal(parseDuration('PT0.5S'), 500);
  t.equal(parseDuration('P2W'), 1_209_600_000);
});

t.test('anything else is not a duration', async (t) => {
  for (const text of ['', '10', 's', '-5s', '5 s', '5sec', 'P', 'PT', 'P1DT', '1y', 'PT5X', '5s ', ' 5s']) {
    t.equal(parseDuration(text), undefined, JSON.stringify(text));
  }
});

t.test('format round-trips', async (t) => {
  for (const ms of [1, 999, 1_000, 90_000, 3_600_000, 604_800_000, 1_500]) {
    t.equal(parseDuration(formatDuration(ms)), ms);
  }
  t.equal(formatDuration(604_800_000), '7d');
  t.equal(formatDuration(1_500), '1500ms');
});
