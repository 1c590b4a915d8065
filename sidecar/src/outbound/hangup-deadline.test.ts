// Hangup's deadline: one timer that cuts the call as a hang-up does, but as `expired`, until it is disarmed.
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { Hangup } from './hangup.ts';

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
  hangup.expireIn(20);
  t.equal(hangup.deadline, 20);
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

t.test('disarmed before it passes, the deadline never fires', async (t) => {
  const hangup = new Hangup();
  const stopped: string[] = [];
  hangup.watch(() => stopped.push('attempt'));
  hangup.expireIn(20);
  hangup.disarm();
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

t.test('a hang-up disarms the deadline', async (t) => {
  const hangup = new Hangup();
  hangup.expireIn(20);
  hangup.hangUp();
  await sleep(60);
  t.ok(hangup.happened);
  t.notOk(hangup.expired);
});
