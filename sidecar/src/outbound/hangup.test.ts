// Hangup: the app going away stops what watches it, once, and aborts the signal made for waits.
import t from 'tap';
import { Hangup } from './hangup.ts';

t.test('what watches is stopped once when the app hangs up, unless it stopped watching', async (t) => {
  const hangup = new Hangup();
  const stopped: string[] = [];
  const attempt = () => stopped.push('attempt');
  const finished = () => stopped.push('finished');
  hangup.watch(attempt);
  hangup.watch(finished);
  hangup.unwatch(finished);
  t.notOk(hangup.happened);
  hangup.hangUp();
  hangup.hangUp();
  t.ok(hangup.happened);
  t.same(stopped, ['attempt'], 'stopped once; the one that stopped watching is left alone');
  hangup.watch(() => stopped.push('late'));
  t.same(stopped, ['attempt'], 'watching after the hang-up calls nothing (the caller checks happened first)');
});

t.test('its signal aborts on the hang-up, whether taken before or after it', async (t) => {
  const before = new Hangup();
  const signal = before.signal;
  t.equal(before.signal, signal, 'one signal per call');
  t.notOk(signal.aborted);
  before.hangUp();
  t.ok(signal.aborted);
  const after = new Hangup();
  after.hangUp();
  t.ok(after.signal.aborted, 'a signal taken after the hang-up is already aborted');
});
