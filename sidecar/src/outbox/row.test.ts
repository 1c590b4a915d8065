import t from 'tap';
import { messageOf } from './row.ts';
import type { OutboxRow } from './table.ts';

const NOW = Date.parse('2026-11-21T12:00:00Z');
const DAY = 86_400_000;
const row = (fields: Partial<OutboxRow>): OutboxRow => ({
  seq: '1',
  id: 'm-1',
  topic: 'orders.created',
  payload: Buffer.from('{}'),
  content_type: 'application/json',
  headers: {},
  deliver_at: null,
  created_at: new Date(NOW),
  ...fields,
});

t.test('a row as the message it asks for', async (t) => {
  const converted = messageOf(
    row({ headers: { 'ce-type': 'order.created', traceparent: '00-ab-cd-01', 'x-other': 'dropped' } }),
    365 * DAY,
    NOW,
  );
  t.same(converted, {
    message: {
      topic: 'orders.created',
      body: Buffer.from('{}'),
      id: 'm-1',
      contentType: 'application/json',
      headers: { 'ce-type': 'order.created', traceparent: '00-ab-cd-01' },
      delayMs: undefined,
    },
  });
});

t.test('deliver_at: later is a delay, past or now is no delay, beyond the broker is a problem', async (t) => {
  const delayOf = (at: number) => {
    const converted = messageOf(row({ deliver_at: new Date(at) }), 365 * DAY, NOW);
    return 'message' in converted ? converted.message.delayMs : converted.problem;
  };
  t.equal(delayOf(NOW + 7 * DAY), 7 * DAY, 'a reservation expiring in 7 days');
  t.equal(delayOf(NOW - 60_000), undefined, 'a time already past: at once');
  t.equal(delayOf(NOW), undefined);
  t.equal(delayOf(NOW + 366 * DAY), 'deliver_at: later than the 365 days the broker can hold a message');
});

t.test('null columns the table allows only by a DDL of the app’s own', async (t) => {
  const problem = (fields: Partial<OutboxRow>) => {
    const converted = messageOf(row(fields), DAY, NOW);
    return 'problem' in converted ? converted.problem : 'published';
  };
  t.match(problem({ topic: null }), /^topic null: /);
  t.equal(problem({ id: null }), 'id: expected 1-200 characters');
  t.equal(problem({ id: '' }), 'id: expected 1-200 characters');
  t.equal(problem({ payload: null }), 'payload: required');
  t.equal(problem({ headers: null }), 'published', 'no headers is no headers');
  t.equal(problem({ headers: 'ce-type' }), 'headers: expected a JSON object');
  t.equal(problem({ content_type: null }), 'published');
});
