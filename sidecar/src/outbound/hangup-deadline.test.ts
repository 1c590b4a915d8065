// Hangup's deadline: one timer that cuts the call as a hang-up does, but as `expired`, until it is disarmed.
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { Hangup } from './hangup.ts';

/** Timers alive now (setTimeout's, unref'd or not), to see a deadline's timer come and go. */
const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;

t.test('without a deadline nothing expires, and no back-off passes it', async (t) => {
  const hangup = new Hangup();
  t.equal(hangup.deadline, undefined);
  t.notOk(hangup.passesDeadline(Number.MAX_SAFE_INTEGER));
  hangup.disarm(); // nothing to disarm
  t.notOk(hangup.cut);
});

t.test('the deadline passing stops what watches, aborts the signal, and is expired rather than happened', async (t) => {
  const hangup = new Hangup();
  const stopped: string[] = [];
  hangup.watch(() => stopped.push('attempt'));
  const signal = hangup.signal;
  hangup.expireIn(20, 'target');
  t.equal(hangup.deadline, 20);
  t.equal(hangup.deadlineSetBy, 'target', 'and who set it');
  t.notOk(hangup.passesDeadline(0));
  t.ok(hangup.passesDeadline(20), 'a back-off ending at the deadline passes it');
  await sleep(60);
  t.ok(hangup.expired);
  t.ok(hangup.cut);
  t.notOk(hangup.happened, 'the app is still there');
  t.same(stopped, ['attempt']);
  t.ok(signal.aborted);
  const late = new Hangup();
  late.expire();
  t.ok(late.signal.aborted, 'a signal taken after the deadline is already aborted');
});

t.test('disarmed as the answer goes back, the deadline never fires: its timer is gone', async (t) => {
  const hangup = new Hangup();
  const stopped: string[] = [];
  hangup.watch(() => stopped.push('attempt'));
  const before = timers();
  hangup.expireIn(20, 'target');
  t.equal(timers(), before + 1, 'the deadline is one timer');
  hangup.disarm();
  t.equal(timers(), before, 'disarmed: its timer is cleared');
  await sleep(60);
  t.notOk(hangup.cut);
  t.same(stopped, []);
});

t.test('what watches stays watched after the deadline: the app hanging up later still stops it', async (t) => {
  const hangup = new Hangup();
  const stopped: string[] = [];
  hangup.watch(() => stopped.push('stream'));
  hangup.expire();
  hangup.expire();
  t.same(stopped, ['stream'], 'stopped once by the deadline');
  hangup.hangUp();
  t.same(stopped, ['stream', 'stream'], 'and again by the hang-up');
  t.ok(hangup.happened);
  t.notOk(hangup.expired, 'the app gone: no one to answer, expired or not');
  t.ok(hangup.cut);
});

t.test('a hang-up disarms the deadline: its timer is cleared', async (t) => {
  const hangup = new Hangup();
  const before = timers();
  hangup.expireIn(20, 'target');
  t.equal(timers(), before + 1, 'the deadline is one timer');
  hangup.hangUp();
  t.equal(timers(), before, 'the hang-up cleared it');
  await sleep(60);
  t.ok(hangup.happened);
  t.notOk(hangup.expired);
});
