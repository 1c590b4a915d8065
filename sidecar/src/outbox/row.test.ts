import t from 'tap';
import { messageOf } from './row.ts';
import type { OutboxRow } from './table.ts';

const DAY = 86_400_000;
const row = (fields: Partial<OutboxRow>): OutboxRow => ({
  seq: '1',
  id: 'm-1',
  topic: 'orders.created',
  payload: Buffer.from('{}'),
  content_type: 'application/json',
  headers: {},
  delay_ms: null,
  created_at: new Date('2026-11-21T12:00:00Z'),
  ...fields,
});

t.test('a row as the message it asks for', async (t) => {
  const converted = messageOf(
    row({ headers: { 'ce-type': 'order.created', traceparent: '00-ab-cd-01', 'x-other': 'dropped' } }),
    365 * DAY,
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

t.test(
  'deliver_at (its delay on the database clock): later is a delay, past is none, beyond the broker is a problem',
  async (t) => {
    const delayOf = (delayMs: number | null) => {
      const converted = messageOf(row({ delay_ms: delayMs }), 365 * DAY);
      return 'message' in converted ? converted.message.delayMs : converted.problem;
    };
    t.equal(delayOf(7 * DAY), 7 * DAY, 'a reservation expiring in 7 days');
    t.equal(delayOf(1.2), 2, 'rounded up: never early');
    t.equal(delayOf(0), undefined, 'a time already past (the query says 0): at once');
    t.equal(delayOf(null), undefined, 'no deliver_at: at once');
    t.equal(delayOf(366 * DAY), 'deliver_at: the delay is longer than the 365 days the broker can hold a message');
  },
);

t.test('what AMQP cannot carry, and null columns a DDL of the app’s own may allow', async (t) => {
  const problem = (fields: Partial<OutboxRow>) => {
    const converted = messageOf(row(fields), DAY);
    return 'problem' in converted ? converted.problem : 'published';
  };
  t.match(problem({ topic: null }), /^topic null: /);
  t.equal(problem({ id: null }), 'id: expected 1-200 characters, at most 255 bytes');
  t.equal(problem({ id: '' }), 'id: expected 1-200 characters, at most 255 bytes');
  t.equal(problem({ id: 'é'.repeat(200) }), 'id: expected 1-200 characters, at most 255 bytes', '400 bytes');
  t.equal(problem({ content_type: `text/${'x'.repeat(300)}` }), 'content_type: expected at most 255 bytes');
  t.equal(problem({ payload: null }), 'payload: required');
  t.equal(problem({ headers: null }), 'published', 'no headers is no headers');
  t.equal(problem({ headers: 'ce-type' }), 'headers: expected a JSON object');
  t.equal(problem({ content_type: null }), 'published');
});
