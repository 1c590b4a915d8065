// The app id a pod gets when it has no outrigger.dev/app-id annotation: the
// name of what runs it, so every replica of a Deployment shares one id (and
// so one subscription group) without anyone writing it down, and every run of
// a CronJob too (a subscription's durable queue is named by the app id: a new
// id each run would make new queues and strand the messages in the old ones).
import type { Pod } from './pod.ts';

export interface DerivedAppId {
  appId: string;
  /** Which rule gave it, from what: for the review's log line, and the message when it is not a valid id. */
  source: string;
}

type OwnerReference = NonNullable<Pod['metadata']['ownerReferences']>[number];

/** `now` (ms since the epoch) bounds the scheduled time in a CronJob's Job name; see cronJobOf. */
export function deriveAppId(metadata: Pod['metadata'], now: number = Date.now()): DerivedAppId | undefined {
  const owners = metadata.ownerReferences ?? [];
  const owner = owners.find((reference) => reference.controller === true) ?? owners[0];
  if (owner !== undefined) {
    // A Deployment's ReplicaSet is named "<deployment>-<pod-template-hash>"; the hash changes with every rollout.
    const hash = metadata.labels?.['pod-template-hash'];
    if (owner.kind === 'ReplicaSet' && hash !== undefined && hash !== '' && owner.name.endsWith(`-${hash}`)) {
      return { appId: owner.name.slice(0, -(hash.length + 1)), source: `the Deployment of ReplicaSet ${owner.name}` };
    }
    const cronJob = cronJobOf(owner, now);
    if (cronJob !== undefined) {
      return {
        appId: cronJob,
        source: `the CronJob of Job ${owner.name} (its name less the scheduled minute the CronJob controller adds)`,
      };
    }
    return { appId: owner.name, source: `the owner ${owner.kind} ${owner.name}` };
  }
  if (metadata.generateName !== undefined && metadata.generateName !== '') {
    return { appId: metadata.generateName.replace(/-+$/, ''), source: `generateName "${metadata.generateName}"` };
  }
  if (metadata.name !== undefined && metadata.name !== '') {
    return { appId: metadata.name, source: `the pod name "${metadata.name}"` };
  }
  return undefined;
}

/**
 * The CronJob controller (Kubernetes' cronjob_controllerv2, the only one since 1.22) names each Job
 * fmt.Sprintf("%s-%d", cronJob.Name, scheduledTime.Unix()/60): the CronJob's name, "-", and the scheduled time
 * in whole minutes since the epoch, in decimal without leading zeros (8 digits until the year 2160). A CronJob's
 * name is a DNS subdomain (so it ends in a letter or digit) of at most 52 characters, so that this fits 63.
 */
const CRONJOB_JOB_NAME = /^([a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)-([1-9][0-9]*)$/;
const CRONJOB_NAME_MAX = 52;
/** 2020-01-01 in minutes: before any Job of the minute-naming controller (alpha in Kubernetes 1.20, Dec 2020). */
const EARLIEST_SCHEDULE = Date.UTC(2020, 0, 1) / 60_000;
/** How far the controller's clock may be ahead of the injector's. */
const CLOCK_SKEW_MINUTES = 24 * 60;

/**
 * The name of the CronJob that made the pod's owner, if the owner is a Job that a CronJob made.
 *
 * The pod itself does not say. What it carries names or identifies the Job, not the CronJob: the Job
 * controller's owner reference and labels (batch.kubernetes.io/job-name, batch.kubernetes.io/controller-uid,
 * their legacy job-name and controller-uid), and whatever labels the CronJob's template has. The Job's own
 * owner reference to its CronJob and its batch.kubernetes.io/cronjob-scheduled-timestamp annotation stay on
 * the Job, and a review does no I/O (reading the Job would need RBAC on Jobs, add a request to every pod's
 * creation and fail it when the API server is slow). So the Job's name decides, and only a name that the
 * controller could have made now counts:
 * - a batch/v1 Job that is the pod's controller (the Job controller sets controller: true; another kind named
 *   Job, from some CRD, names its objects its own way);
 * - a prefix that can be a CronJob's name, and digits as %d writes them;
 * - a scheduled time not after now (plus clock skew): the controller makes a Job only once its time has come,
 *   and the pods come later. This keeps a suffix in seconds (`migrate-1735689600`, Helm's `{{ now | unix }}`,
 *   the pre-1.21 controller's naming) and any longer date (`report-202501311200`) out;
 * - and not before 2020. This keeps out counters (`backup-2`, `etl-31337`, a CI build number) and every
 *   YYYYMMDD date (`report-20250131` read as minutes is in 2008; 2099-12-31 in 2009). There is no tighter
 *   lower bound: a Job's pods are made all its life long (retries after back-off, a resumed suspended Job,
 *   an evicted pod replaced), which has no limit without activeDeadlineSeconds.
 * What still passes is a hand-made Job named like "<name>-<8 digits from 26297280 to now>"; its pods get
 * "<name>", said in the review's log line, and outrigger.dev/app-id overrides it.
 */
function cronJobOf(owner: OwnerReference, now: number): string | undefined {
  if (owner.kind !== 'Job' || owner.apiVersion !== 'batch/v1' || owner.controller !== true) return undefined;
  const match = CRONJOB_JOB_NAME.exec(owner.name);
  if (match === null) return undefined;
  const [, cronJob, digits] = match as unknown as [string, string, string];
  if (cronJob.length > CRONJOB_NAME_MAX) return undefined;
  const minutes = Number(digits);
  if (minutes < EARLIEST_SCHEDULE || minutes > now / 60_000 + CLOCK_SKEW_MINUTES) return undefined;
  return cronJob;
}
