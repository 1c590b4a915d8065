// What holds for an app's subscriptions together, wherever they come from
// (the configuration file, Subscription resources): one subscription per
// group and topic, queue names within AMQP's limit, push only with an app port.

import type { z } from 'zod';
import { deadLetterQueueName, MAX_QUEUE_NAME_BYTES, subscriptionQueueName } from '../broker/subscription-queue.ts';
import type { SubscriptionFields } from './subscription.ts';

type ParsedSubscription = z.output<typeof SubscriptionFields>;

/** A subscription as the sidecar runs it: group, concurrency and prefetch resolved. */
export interface ResolvedSubscription extends ParsedSubscription {
  group: string;
  prefetch: number;
}

export function resolveSubscription(sub: ParsedSubscription, appId: string): ResolvedSubscription {
  const concurrency = sub.ordered ? 1 : sub.concurrency;
  return { ...sub, group: sub.group ?? appId, concurrency, prefetch: sub.prefetch ?? concurrency * 2 };
}

export interface SubscriptionProblem {
  /** Index in the list checked. */
  index: number;
  field: 'group' | 'mode';
  message: string;
}

/** Problems of `subs` taken together; `subs[i]` is only ever blamed for a clash with an earlier entry. */
export function subscriptionSetProblems(
  subs: readonly ParsedSubscription[],
  { appId, appPort }: { appId: string; appPort: number | undefined },
): SubscriptionProblem[] {
  const problems: SubscriptionProblem[] = [];
  const queues = new Map<string, string>();
  subs.forEach((sub, index) => {
    const queue = subscriptionQueueName(sub.group ?? appId, sub.topic);
    const other = queues.get(queue);
    if (other !== undefined && other !== sub.name) {
      problems.push({
        index,
        field: 'group',
        message: `subscription "${other}" already takes topic "${sub.topic}" for this group; give one of them another group`,
      });
    } else queues.set(queue, sub.name);
    if (Buffer.byteLength(deadLetterQueueName(queue)) > MAX_QUEUE_NAME_BYTES) {
      problems.push({
        index,
        field: 'group',
        message: `the queue name "<group>:<topic>:dlq" would exceed ${MAX_QUEUE_NAME_BYTES} bytes; use a shorter group or topic`,
      });
    }
    if (sub.mode === 'push' && appPort === undefined) {
      problems.push({ index, field: 'mode', message: 'push delivery needs app.port (or OUTRIGGER_APP_PORT)' });
    }
  });
  return problems;
}
