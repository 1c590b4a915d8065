import t from 'tap';
import { deriveAppId } from './app-id.ts';
import type { Pod } from './pod.ts';

// 2025-06-01T00:00Z: the injector's clock in these tests.
const now = Date.UTC(2025, 5, 1);
const minute = (ms: number) => Math.floor(ms / 60_000);

/** A pod as the Job controller makes it: owned by the Job, with the labels the Job API adds to its template. */
const jobPod = (job: string, owner: Record<string, unknown> = {}): Pod['metadata'] => ({
  generateName: `${job}-`,
  labels: { 'batch.kubernetes.io/job-name': job, 'job-name': job, 'batch.kubernetes.io/controller-uid': 'c0ffee' },
  ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: job, controller: true, uid: 'c0ffee', ...owner }],
});
const appIdOf = (metadata: Pod['metadata']) => deriveAppId(metadata, now)?.appId;

t.test("a CronJob's Job: the CronJob's name, the same for every run", async (t) => {
  // As the controller names them: scheduledTime.Unix()/60.
  const runs = [Date.UTC(2025, 4, 31, 23, 0), Date.UTC(2025, 4, 31, 23, 30), now].map(minute);
  t.same(
    runs.map((run) => appIdOf(jobPod(`nightly-report-${run}`))),
    ['nightly-report', 'nightly-report', 'nightly-report'],
  );
  t.same(deriveAppId(jobPod('nightly-29142720'), now), {
    appId: 'nightly',
    source: 'the CronJob of Job nightly-29142720 (its name less the scheduled minute the CronJob controller adds)',
  });
  t.equal(appIdOf(jobPod(`sync-v2-${minute(now)}`)), 'sync-v2', 'only the last "-" part is the time');
  t.equal(appIdOf(jobPod(`sync-${minute(now) + 60}`)), 'sync', 'a controller clock an hour ahead');
  t.equal(appIdOf(jobPod(`sync-${minute(Date.UTC(2021, 0, 1))}`)), 'sync', "a years-old run's pod, replaced now");
  t.equal(appIdOf(jobPod(`${'a'.repeat(52)}-${minute(now)}`)), 'a'.repeat(52), 'the longest CronJob name');
  const bare = {
    ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: `x-${minute(now)}`, controller: true }],
  };
  t.equal(appIdOf(bare), 'x', 'without the labels (a Job with manualSelector: true has none)');
});

t.test('a Job with a numeric suffix that no CronJob gave it keeps its name', async (t) => {
  const kept: [string, string][] = [
    ['backup-2', 'a counter'],
    ['etl-31337', 'a build number'],
    ['report-20250131', 'a YYYYMMDD date (2008 as minutes)'],
    ['report-20991231', 'the last YYYYMMDD date of the century (2009 as minutes)'],
    [`sync-${minute(Date.UTC(2019, 11, 31, 23, 59))}`, 'a minute before 2020'],
    [`sync-${minute(now) + 2 * 24 * 60}`, 'two days after now'],
    ['migrate-1748736000', "seconds since the epoch (Helm's {{ now | unix }}, the pre-1.21 controller)"],
    ['report-202505311200', 'a YYYYMMDDhhmm date'],
    [`sync-0${minute(now)}`, 'a leading zero, which %d never writes'],
    [`sync-${minute(now)}x`, 'not all digits'],
    [`sync--${minute(now)}`, 'no CronJob name ends in "-"'],
    [`${'a'.repeat(53)}-${minute(now)}`, 'a name longer than a CronJob may have'],
  ];
  for (const [job, why] of kept) t.equal(appIdOf(jobPod(job)), job, why);

  const name = `nightly-${minute(now)}`;
  t.equal(appIdOf(jobPod(name, { controller: false })), name, 'the Job is not the controller');
  t.equal(appIdOf(jobPod(name, { controller: undefined })), name, 'nor marked as one');
  t.equal(appIdOf(jobPod(name, { apiVersion: 'example.com/v1' })), name, "another API's Job kind");
  t.equal(appIdOf(jobPod(name, { kind: 'StatefulSet', apiVersion: 'apps/v1' })), name, 'not a Job');
});

t.test('the other rules are unchanged', async (t) => {
  t.same(
    deriveAppId(
      {
        labels: { 'pod-template-hash': '7c9d8f6b5' },
        ownerReferences: [{ kind: 'ReplicaSet', name: 'orders-7c9d8f6b5', controller: true }],
      },
      now,
    ),
    { appId: 'orders', source: 'the Deployment of ReplicaSet orders-7c9d8f6b5' },
  );
  t.same(deriveAppId({ ownerReferences: [{ kind: 'StatefulSet', name: 'ledger' }] }, now), {
    appId: 'ledger',
    source: 'the owner StatefulSet ledger',
  });
  t.same(deriveAppId({ generateName: 'worker-' }, now), { appId: 'worker', source: 'generateName "worker-"' });
  t.same(deriveAppId({ name: 'one-off' }, now), { appId: 'one-off', source: 'the pod name "one-off"' });
  t.equal(deriveAppId({}, now), undefined);
});
