// POST /v1/publish/{topic} and /v1/publish/{topic}/batch: 202 only after the
// broker confirmed the message (API.md, "Publish").
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncZod, ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { type Broker, isBrokerUnavailable, type OutgoingMessage, type PublishOutcome } from '../broker/broker.ts';
import type { Config } from '../config/schema.ts';
import { DedupeWindow } from '../messaging/dedupe-window.ts';
import { type Delay, parseDelay } from '../messaging/delay.ts';
import {
  contentTypeProblem,
  idProblem,
  keptHeaders,
  MAX_ID_LENGTH,
  topicProblem,
} from '../messaging/message-fields.ts';
import { publishTo, send } from '../messaging/send.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { ProblemError } from './problems.ts';

const MAX_BATCH = 500;

const Accepted = z.object({
  id: z.string(),
  topic: z.string(),
  deliverAt: z.string().optional().describe('When the message becomes visible to consumers (delayed publishes only)'),
  duplicate: z.boolean().describe('True when the idempotency key was seen within the dedupe window: nothing was sent'),
  routed: z.boolean().describe('False when no queue was bound to the topic: the broker confirmed and dropped it'),
});
type Accepted = z.infer<typeof Accepted>;

const DelayQuery = z.object({
  delay: z.string().optional().describe('250ms, 30s, 10m, 7d or ISO 8601 (PT10M)'),
  deliverAt: z.string().optional().describe('RFC 3339 time'),
});

const BatchEntry = z.strictObject({
  data: z.union([z.strictObject({ base64: z.base64() }), z.json()]),
  contentType: z.string().optional(), // checked as a single publish's is (checkContentType)
  id: z.string().min(1).max(MAX_ID_LENGTH).optional(),
  delay: z.string().optional(),
  deliverAt: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
});

export interface PublishDeps {
  config: Config;
  broker: Broker;
  metrics: Metrics;
}

export const publishRoutes: FastifyPluginAsyncZod<PublishDeps> = async (app, { config, broker, metrics }) => {
  const dedupe = new DedupeWindow<PublishOutcome>({
    windowMs: config.publish.dedupeWindow,
    maxKeys: config.publish.dedupeMaxKeys,
  });
  const count = (topic: string, outcome: string) => metrics.publishes.inc({ topic, outcome });

  /** Publishes one message (or answers from the dedupe window). Throws ProblemError. */
  /**
   * `keyed`: the id came from the caller (idempotency-key, ce-id, a batch entry's id), so a
   * repeat must be recognised. An id the sidecar made cannot repeat and is not remembered.
   */
  async function publishOne(message: OutgoingMessage, delay: Delay | undefined, keyed: boolean): Promise<Accepted> {
    if (broker.publishesInFlight >= config.publish.maxInFlight) {
      count(message.topic, 'backpressure');
      throw new ProblemError(
        'BACKPRESSURE',
        `more than ${config.publish.maxInFlight} publishes are waiting for the broker`,
        {
          headers: { 'retry-after': '1' },
        },
      );
    }
    const publish = keyed
      ? () => dedupe.run(`${message.topic}\u0000${message.id}`, () => broker.publish(message))
      : publishTo(broker, message);
    try {
      const { routed, duplicate } = await send(message, metrics, publish);
      return {
        id: message.id,
        topic: message.topic,
        ...(delay === undefined ? {} : { deliverAt: delay.deliverAt.toISOString() }),
        duplicate,
        routed,
      };
    } catch (error) {
      if (!isBrokerUnavailable(error)) throw error;
      throw new ProblemError('BROKER_UNAVAILABLE', `the message was not published: ${error.message}`, {
        headers: { 'retry-after': '1' },
      });
    }
  }

  // The single publish takes any content-type as raw bytes.
  await app.register(async (plugin) => {
    const raw = plugin.withTypeProvider<ZodTypeProvider>();
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    raw.post(
      '/v1/publish/:topic',
      {
        schema: {
          summary: 'Publish one message; 202 once the broker has made it durable',
          tags: ['publish'],
          params: z.object({ topic: z.string() }),
          querystring: DelayQuery,
          headers: z.object({
            'idempotency-key': z.string().optional(),
            'ce-id': z.string().optional(),
          }),
          response: { 202: Accepted },
        },
        // The answer's type is checked when this compiles; encoding it through the schema again
        // (what the zod serializer does) costs on the hottest path and catches nothing more.
        serializerCompiler: () => (data) => JSON.stringify(data),
      },
      async (request, reply) => {
        const topic = checkTopic(request.params.topic);
        const delay = parseDelay(request.query, broker.maxDelayMs);
        const headers = request.headers;
        const key = headers['idempotency-key'] ?? headers['ce-id'];
        const id = checkId(key ?? randomUUID());
        const kept = keptHeaders(headers);
        const body = (request.body as Buffer | undefined) ?? Buffer.alloc(0);
        const contentType = checkContentType(headers['content-type']);
        const accepted = await publishOne(
          { topic, body, id, contentType, headers: kept, delayMs: delay?.delayMs },
          delay,
          key !== undefined,
        );
        return reply.code(202).send(accepted);
      },
    );
  });

  // The batch takes JSON only (fastify would also parse text/plain).
  app.removeContentTypeParser('text/plain');
  app.post(
    '/v1/publish/:topic/batch',
    {
      schema: {
        summary: 'Publish many messages to one topic; one result per entry, in order',
        tags: ['publish'],
        params: z.object({ topic: z.string() }),
        body: z.array(BatchEntry).min(1).max(MAX_BATCH),
        response: {
          202: z.object({
            results: z.array(
              z.union([
                Accepted,
                z.object({ id: z.string(), error: z.object({ code: z.string(), detail: z.string() }) }),
              ]),
            ),
          }),
        },
      },
    },
    async (request, reply) => {
      const topic = checkTopic(request.params.topic);
      // Check every entry before publishing any: a bad batch changes nothing.
      const prepared = request.body.map((entry, index) => {
        try {
          const delay = parseDelay(entry, broker.maxDelayMs);
          const isBytes = typeof entry.data === 'object' && entry.data !== null && 'base64' in entry.data;
          const body = isBytes
            ? Buffer.from((entry.data as { base64: string }).base64, 'base64')
            : Buffer.from(JSON.stringify(entry.data));
          const message: OutgoingMessage = {
            topic,
            body,
            id: checkId(entry.id ?? randomUUID()),
            contentType:
              checkContentType(entry.contentType) ?? (isBytes ? 'application/octet-stream' : 'application/json'),
            headers: keptHeaders(entry.headers ?? {}),
            delayMs: delay?.delayMs,
          };
          return { message, delay, keyed: entry.id !== undefined };
        } catch (error) {
          if (error instanceof ProblemError) {
            throw new ProblemError(error.code, `entry [${index}]: ${error.detail}`);
          }
          throw error;
        }
      });
      const settled = await Promise.allSettled(
        prepared.map(({ message, delay, keyed }) => publishOne(message, delay, keyed)),
      );
      const results = settled.map((outcome, index) => {
        if (outcome.status === 'fulfilled') return outcome.value;
        const problem =
          outcome.reason instanceof ProblemError ? outcome.reason : new ProblemError('INTERNAL', 'failed');
        return { id: prepared[index]?.message.id ?? '', error: { code: problem.code, detail: problem.detail } };
      });
      const failures = settled.filter((outcome) => outcome.status === 'rejected');
      if (failures.length === settled.length) throw (failures[0] as PromiseRejectedResult).reason;
      return reply.code(202).send({ results });
    },
  );
};

/** The topic, or TOPIC_INVALID with the same words the configuration uses. */
function checkTopic(name: string): string {
  const problem = topicProblem(name);
  if (problem !== undefined) throw new ProblemError('TOPIC_INVALID', `topic "${name.slice(0, 50)}": ${problem}`);
  return name;
}

function checkId(id: string): string {
  const problem = idProblem(id);
  if (problem !== undefined) {
    throw new ProblemError('REQUEST_INVALID', `the message id (idempotency-key or ce-id): ${problem}`);
  }
  return id;
}

/** The content type, if it fits the message's property (AMQP cannot carry a longer one). */
function checkContentType(contentType: string | undefined): string | undefined {
  const problem = contentType === undefined ? undefined : contentTypeProblem(contentType);
  if (problem !== undefined) throw new ProblemError('REQUEST_INVALID', `the content-type: ${problem}`);
  return contentType;
}
