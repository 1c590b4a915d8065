// Pull, ack and nack, and the dead letters of a subscription (docs/api.md,
// "Pull" and "Dead letters").
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { type InboundMessage, isBrokerUnavailable } from '../broker/broker.ts';
import { parseDuration } from '../config/duration.ts';
import type { ActiveSubscription, Subscriptions } from '../delivery/subscriptions.ts';
import { encodePayload } from '../messaging/payload.ts';
import { ProblemError } from './problems.ts';

const MAX_PULL = 1_000;
const MAX_WAIT_MS = 5 * 60_000;
const MAX_LEASE_MS = 12 * 3_600_000;
const MAX_DEAD_LETTERS = 1_000;

const Name = z.object({ name: z.string() });
const AckIds = z.array(z.string().min(1).max(100)).min(1).max(MAX_PULL);
const Duration = z.string().describe('250ms, 30s, 10m or ISO 8601 (PT10M)');

const Message = z.object({
  id: z.string(),
  topic: z.string(),
  contentType: z.string().optional(),
  data: z.unknown().optional().describe('The body: its JSON value for JSON content types, a string for text'),
  dataBase64: z.string().optional().describe('The body as base64, when it is neither JSON nor text'),
  headers: z.record(z.string(), z.string()).describe('CloudEvents attributes and trace context'),
  attempt: z.number().int(),
  publishedAt: z.string().optional(),
});

const DeadLetter = Message.omit({ attempt: true }).extend({
  reason: z.enum(['rejected', 'max-attempts', 'nacked', 'unknown']),
  lastStatus: z.number().int().optional(),
  lastError: z.string().optional(),
  attempts: z.number().int(),
  deadLetteredAt: z.string().optional(),
});

export interface SubscriptionRoutesDeps {
  subscriptions: Subscriptions;
}

export const subscriptionRoutes: FastifyPluginAsyncZod<SubscriptionRoutesDeps> = async (app, { subscriptions }) => {
  const find = (name: string): ActiveSubscription => {
    const found = subscriptions.get(name);
    if (found === undefined) {
      throw new ProblemError('SUBSCRIPTION_UNKNOWN', `no subscription named "${name.slice(0, 100)}" is configured`);
    }
    return found;
  };
  const pullOf = (name: string) => {
    const found = find(name);
    if (found.pull === undefined) {
      throw new ProblemError(
        'SUBSCRIPTION_NOT_PULL',
        `subscription "${name}" is push: the sidecar delivers its messages`,
      );
    }
    return found.pull;
  };

  app.post(
    '/v1/subscriptions/:name/pull',
    {
      schema: {
        summary: 'Take up to max messages under a lease, waiting up to wait for the first',
        tags: ['subscriptions'],
        params: Name,
        body: z
          .strictObject({
            max: z.int().min(1).max(MAX_PULL).default(10),
            wait: Duration.default('0s'),
            lease: Duration.default('60s'),
          })
          .prefault({}),
        response: { 200: z.object({ messages: z.array(Message.extend({ ackId: z.string() })) }) },
      },
      // No body at all means the defaults (fastify hands the validator null, which prefault does not cover).
      preValidation: async (request) => {
        const raw = request as { body: unknown };
        raw.body ??= {};
      },
    },
    async (request, reply) => {
      const pull = pullOf(request.params.name);
      const waitMs = durationOf('wait', request.body.wait, 0, MAX_WAIT_MS);
      const leaseMs = durationOf('lease', request.body.lease, 1_000, MAX_LEASE_MS);
      // A caller that gives up (a client timeout shorter than `wait`, a closed
      // connection) must not take messages with it for a whole lease.
      const gone = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableEnded) gone.abort();
      });
      const leased = await pull.pull(request.body.max, waitMs, leaseMs, gone.signal);
      if (gone.signal.aborted) {
        await pull.release(leased.map(({ ackId }) => ackId));
        return { messages: [] };
      }
      return {
        messages: leased.map(({ ackId, delivery, headers }) => ({
          ackId,
          ...messageJson(delivery),
          headers,
          attempt: delivery.attempt,
        })),
      };
    },
  );

  app.post(
    '/v1/subscriptions/:name/ack',
    {
      schema: {
        summary: 'Settle pulled messages as processed',
        tags: ['subscriptions'],
        params: Name,
        body: z.strictObject({ ackIds: AckIds }),
        response: {
          200: z.object({
            acked: z.array(z.string()),
            unknown: z.array(z.string()).describe('Not leased (any more): expired, settled before, or never issued'),
          }),
        },
      },
    },
    async (request) => {
      const { settled, unknown } = await pullOf(request.params.name).ack(request.body.ackIds);
      return { acked: settled, unknown };
    },
  );

  app.post(
    '/v1/subscriptions/:name/nack',
    {
      schema: {
        summary: 'Give pulled messages back: another attempt after retryAfter (or the back-off), or the dead letters',
        tags: ['subscriptions'],
        params: Name,
        body: z.strictObject({
          ackIds: AckIds,
          retryAfter: Duration.optional(),
          deadLetter: z.boolean().default(false),
        }),
        response: { 200: z.object({ nacked: z.array(z.string()), unknown: z.array(z.string()) }) },
      },
    },
    async (request) => {
      const { ackIds, retryAfter, deadLetter } = request.body;
      const pull = pullOf(request.params.name);
      const retryAfterMs = retryAfter === undefined ? undefined : durationOf('retryAfter', retryAfter, 0, MAX_LEASE_MS);
      const { settled, unknown } = await pull.nack(ackIds, { retryAfterMs, deadLetter });
      return { nacked: settled, unknown };
    },
  );

  app.get(
    '/v1/subscriptions/:name/deadletters',
    {
      schema: {
        summary: 'The parked messages with why, oldest first, left in place',
        tags: ['dead letters'],
        params: Name,
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(MAX_DEAD_LETTERS).default(50) }),
        response: { 200: z.object({ messages: z.array(DeadLetter) }) },
      },
    },
    async (request) => {
      const parked = await brokerCall(() => find(request.params.name).deadLetters.peek(request.query.limit));
      return {
        messages: parked.map((message) => ({
          ...messageJson(message),
          reason: message.reason,
          lastStatus: message.lastStatus,
          lastError: message.lastError,
          attempts: message.attempts,
          deadLetteredAt: message.deadLetteredAt?.toISOString(),
        })),
      };
    },
  );

  app.post(
    '/v1/subscriptions/:name/deadletters/replay',
    {
      schema: {
        summary: "Back to the subscription's queue with attempt 1: the given ids, or all",
        tags: ['dead letters'],
        params: Name,
        body: z.union([
          z.strictObject({ ids: z.array(z.string().min(1).max(200)).min(1).max(MAX_PULL) }),
          z.strictObject({ all: z.literal(true) }),
        ]),
        response: { 200: z.object({ replayed: z.array(z.string()) }) },
      },
    },
    async (request) => {
      const { deadLetters } = find(request.params.name);
      const replayed = await brokerCall(() => deadLetters.replay(request.body));
      return { replayed };
    },
  );

  app.delete(
    '/v1/subscriptions/:name/deadletters/:id',
    {
      schema: {
        summary: 'Delete the parked messages with this id',
        tags: ['dead letters'],
        params: z.object({ name: z.string(), id: z.string() }),
        response: { 200: z.object({ deleted: z.number().int() }) },
      },
    },
    async (request) => {
      const { deadLetters } = find(request.params.name);
      const deleted = await brokerCall(() => deadLetters.remove(request.params.id));
      if (deleted === 0) {
        throw new ProblemError('DEAD_LETTER_UNKNOWN', `no dead letter with id "${request.params.id.slice(0, 200)}"`);
      }
      return { deleted };
    },
  );
};

/** What pulled and parked messages have in common, as JSON. */
function messageJson(message: InboundMessage) {
  return {
    id: message.id,
    topic: message.topic,
    contentType: message.contentType,
    ...encodePayload(message.body, message.contentType),
    headers: message.headers,
    publishedAt: message.publishedAt?.toISOString(),
  };
}

function durationOf(field: string, text: string, min: number, max: number): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms < min || ms > max) {
    throw new ProblemError(
      'REQUEST_INVALID',
      `body.${field}: expected a duration from ${min} ms to ${max / 1000} s, such as "500ms", "30s" or "PT1M"`,
    );
  }
  return ms;
}

async function brokerCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ProblemError) throw error;
    // Not connected, or the channel went away mid-way: nothing was changed that was not confirmed.
    const detail = isBrokerUnavailable(error)
      ? error.message
      : `the broker failed the operation: ${(error as Error).message}`;
    throw new ProblemError('BROKER_UNAVAILABLE', detail, { headers: { 'retry-after': '1' } });
  }
}
