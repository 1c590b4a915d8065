// A target's fields as the configuration file and the OutboundTarget resource take them: the deadline.
import t from 'tap';
import { OutboundTargetSpecSchema } from '../k8s/resources.ts';
import { parseConfig } from './load.ts';
import { TargetSchema } from './target.ts';

const target = { name: 'payments', baseUrl: 'http://payments.internal' };

/** What parseConfig refuses a config with this one target for (its message), or undefined when it takes it. */
const refusal = (fields: Record<string, unknown>): string | undefined => {
  try {
    parseConfig({ appId: 'orders', targets: [{ ...target, ...fields }] });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
};

t.test('deadline: none by default; a duration in any of the usual forms, in ms', async (t) => {
  t.equal(TargetSchema.parse(target).deadline, undefined, 'no deadline unless one is set');
  t.equal(TargetSchema.parse({ ...target, deadline: '1500ms' }).deadline, 1_500);
  t.equal(TargetSchema.parse({ ...target, deadline: '2s' }).deadline, 2_000);
  t.equal(TargetSchema.parse({ ...target, deadline: 'PT1M' }).deadline, 60_000);
  t.equal(TargetSchema.parse({ ...target, deadline: '500ms', timeout: '2s' }).deadline, 500, 'shorter than timeout');
  t.equal(parseConfig({ appId: 'orders', targets: [{ ...target, deadline: '3s' }] }).targets[0]?.deadline, 3_000);
});

t.test('deadline: anything but a duration above 0 is refused, naming the field', async (t) => {
  for (const deadline of ['0s', '0ms', 'PT0S', '0.4ms']) {
    t.match(refusal({ deadline }), /targets\[0\]\.deadline: expected a duration above 0/, deadline);
  }
  for (const deadline of ['soon', '-1s', '10', 10, '']) {
    t.match(refusal({ deadline }), /targets\[0\]\.deadline: expected a duration/, JSON.stringify(deadline));
  }
  t.equal(refusal({ deadline: '1ms' }), undefined, '1ms is the least');
  // Longer than setTimeout's 2^31 - 1 ms, a deadline would fire at once; '1' and 400 zeros is Infinity ms.
  for (const deadline of ['25d', '2147483648ms', '24d1ms', `1${'0'.repeat(400)}ms`, 'P4W']) {
    t.match(refusal({ deadline }), /targets\[0\]\.deadline: expected at most 24d/, deadline.slice(0, 20));
  }
  t.equal(refusal({ deadline: '24d' }), undefined, '24d is the most');
  t.equal(refusal({ deadline: 'P3W3D' }), undefined, '24d as ISO 8601');
});

t.test('the timeout and the back-off, timers too, are at most 24d', async (t) => {
  // Longer than setTimeout's reach, a CONNECT through a proxy would time out at once, a back-off not wait at all.
  t.match(refusal({ timeout: '25d' }), /targets\[0\]\.timeout: expected at most 24d/);
  t.match(refusal({ retry: { initial: '25d' } }), /targets\[0\]\.retry\.initial: expected at most 24d/);
  t.match(refusal({ retry: { max: '2147483648ms' } }), /targets\[0\]\.retry\.max: expected at most 24d/);
  t.equal(refusal({ timeout: '24d', retry: { initial: '24d', max: '24d' } }), undefined, '24d is the most');
});

t.test("an OutboundTarget resource's spec takes the deadline the same way", async (t) => {
  const spec = { appId: 'orders', baseUrl: target.baseUrl };
  t.equal(OutboundTargetSpecSchema.parse({ ...spec, deadline: '750ms' }).deadline, 750);
  t.notOk(OutboundTargetSpecSchema.safeParse({ ...spec, deadline: '0s' }).success);
  t.notOk(OutboundTargetSpecSchema.safeParse({ ...spec, deadline: '25d' }).success);
});
