import t from 'tap';
import { type InjectionSettings, readSettings, type SettingsResult } from './annotations.ts';
import { loadInjectorConfig } from './injector-config.ts';
import { type Pod, PodSchema } from './pod.ts';

const config = loadInjectorConfig();

const pod = (metadata: Record<string, unknown>): Pod =>
  PodSchema.parse({ metadata, spec: { containers: [{ name: 'app', image: 'app:1' }] } });

const annotated = (annotations: Record<string, string>, metadata: Record<string, unknown> = { name: 'web' }) =>
  readSettings(pod({ ...metadata, annotations: { 'outrigger.dev/inject': 'true', ...annotations } }), config);

const settingsOf = (result: SettingsResult): InjectionSettings => {
  if ('problems' in result) throw new Error(`unexpected problems: ${result.problems.join('; ')}`);
  return result.settings;
};
const problemsOf = (result: SettingsResult): string[] => ('problems' in result ? result.problems : []);

t.test('app id: the annotation first, then whoever runs the pod', async (t) => {
  t.equal(settingsOf(annotated({ 'outrigger.dev/app-id': 'billing' })).appId, 'billing');
  const deployment = {
    generateName: 'orders-7c9d8f6b5-',
    labels: { 'pod-template-hash': '7c9d8f6b5' },
    ownerReferences: [{ kind: 'ReplicaSet', name: 'orders-7c9d8f6b5', controller: true, apiVersion: 'apps/v1' }],
  };
  t.equal(settingsOf(annotated({}, deployment)).appId, 'orders', "a Deployment's pod: the Deployment's name");
  const statefulSet = { generateName: 'ledger-', ownerReferences: [{ kind: 'StatefulSet', name: 'ledger' }] };
  t.equal(settingsOf(annotated({}, statefulSet)).appId, 'ledger', 'any other owner: its name');
  const bareReplicaSet = { generateName: 'cache-', ownerReferences: [{ kind: 'ReplicaSet', name: 'cache' }] };
  t.equal(settingsOf(annotated({}, bareReplicaSet)).appId, 'cache', 'a ReplicaSet without the hash: its own name');
  const owners = {
    ownerReferences: [
      { kind: 'Other', name: 'not-this' },
      { kind: 'Job', name: 'nightly', controller: true },
    ],
  };
  t.equal(settingsOf(annotated({}, owners)).appId, 'nightly', 'the controller among several owners');
  // Named by the CronJob controller: "<cronjob>-<scheduled time in minutes since the epoch>".
  const run = `nightly-${Math.floor(Date.now() / 60_000)}`;
  const cronJob = {
    generateName: `${run}-`,
    labels: { 'batch.kubernetes.io/job-name': run, 'job-name': run },
    ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: run, controller: true }],
  };
  t.equal(settingsOf(annotated({}, cronJob)).appId, 'nightly', "a CronJob's pod: the CronJob's name, every run");
  const counted = { ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'backup-2', controller: true }] };
  t.equal(settingsOf(annotated({}, counted)).appId, 'backup-2', 'a Job no CronJob made: its own name');
  t.equal(settingsOf(annotated({}, { generateName: 'worker-' })).appId, 'worker', 'generateName without its dash');
  t.equal(settingsOf(annotated({}, { name: 'one-off' })).appId, 'one-off', 'else the pod name');
});

t.test("where the app id came from, for the review's log line", async (t) => {
  const sourceOf = (result: SettingsResult) => ('appIdSource' in result ? result.appIdSource : undefined);
  t.equal(sourceOf(annotated({ 'outrigger.dev/app-id': 'billing' })), 'outrigger.dev/app-id');
  t.equal(sourceOf(annotated({}, { name: 'one-off' })), 'the pod name "one-off"');
  const run = `nightly-${Math.floor(Date.now() / 60_000)}`;
  const cronJob = { ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: run, controller: true }] };
  t.equal(
    sourceOf(annotated({}, cronJob)),
    `the CronJob of Job ${run} (its name less the scheduled minute the CronJob controller adds)`,
  );
});

t.test('an app id that is not a DNS label is refused, naming the annotation', async (t) => {
  t.match(problemsOf(annotated({ 'outrigger.dev/app-id': 'Billing_Service' })), [
    /^outrigger\.dev\/app-id: "Billing_Service" is not valid: expected a DNS label/,
  ]);
  const dotted = { ownerReferences: [{ kind: 'StatefulSet', name: 'ledger.v2' }] };
  t.match(problemsOf(annotated({}, dotted)), [
    /^outrigger\.dev\/app-id: cannot derive an app id \("ledger\.v2" from the owner StatefulSet ledger\.v2 is not a DNS label\); set outrigger\.dev\/app-id/,
  ]);
  const run = `nightly.report-${Math.floor(Date.now() / 60_000)}`;
  const cronJob = { ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: run, controller: true }] };
  t.match(problemsOf(annotated({}, cronJob)), [
    new RegExp(
      `^outrigger\\.dev/app-id: cannot derive an app id \\("nightly\\.report" from the CronJob of Job ${run} `,
    ),
  ]);
  t.match(problemsOf(annotated({}, {})), [/the pod has no name or owner/]);
});

t.test('app port, log level and config', async (t) => {
  const settings = settingsOf(
    annotated({
      'outrigger.dev/app-port': '8080',
      'outrigger.dev/log-level': 'debug',
      'outrigger.dev/config': 'orders-sidecar',
    }),
  );
  t.equal(settings.appPort, 8080);
  t.equal(settings.logLevel, 'debug');
  t.equal(settings.configMap, 'orders-sidecar');
  const plain = settingsOf(annotated({}));
  t.equal(plain.appPort, undefined, 'no app port unless given');
  t.equal(plain.logLevel, 'info', "the injector's default level");
  t.equal(plain.configMap, undefined);

  for (const [annotation, value, expected] of [
    ['outrigger.dev/app-port', 'http', /expected a port number/],
    ['outrigger.dev/app-port', '0', /expected a port number/],
    ['outrigger.dev/app-port', '65536', /expected a port number/],
    ['outrigger.dev/app-port', '99999999999999999999', /expected a port number \(1-65535\)$/],
    ['outrigger.dev/app-port', '80.5', /expected a port number \(1-65535\)$/],
    ['outrigger.dev/app-port', '', /expected a port number \(1-65535\)$/],
    ['outrigger.dev/app-port', '9464', /the sidecar listens on 3600 and 9464/],
    ['outrigger.dev/log-level', 'verbose', /expected one of fatal, error, warn, info, debug, trace, silent/],
    ['outrigger.dev/config', 'My Config', /expected the name of a ConfigMap/],
  ] as const) {
    t.match(problemsOf(annotated({ [annotation]: value })), [
      new RegExp(`^${annotation}: "${value}" is not valid: ${expected.source}`),
    ]);
  }
});

t.test('resources: the annotations over the configured defaults', async (t) => {
  t.same(settingsOf(annotated({})).resources, config.resources, 'the defaults alone');
  const resources = settingsOf(
    annotated({
      'outrigger.dev/cpu-request': '100m',
      'outrigger.dev/cpu-limit': '1',
      'outrigger.dev/memory-request': '192Mi',
      'outrigger.dev/memory-limit': '512Mi',
    }),
  ).resources;
  t.same(resources, { requests: { cpu: '100m', memory: '192Mi' }, limits: { cpu: '1', memory: '512Mi' } });
  t.same(
    settingsOf(annotated({ 'outrigger.dev/memory-limit': '1Gi' })).resources,
    {
      requests: { cpu: '50m', memory: '128Mi' },
      limits: { memory: '1Gi' },
    },
    'one annotation changes one amount',
  );

  t.match(problemsOf(annotated({ 'outrigger.dev/cpu-limit': '2 cores' })), [
    /^outrigger\.dev\/cpu-limit: "2 cores" is not valid: expected a Kubernetes quantity/,
  ]);
  t.match(problemsOf(annotated({ 'outrigger.dev/memory-request': '512Mi' })), [
    "outrigger.dev/memory-request: the memory request 512Mi (outrigger.dev/memory-request) is more than the memory limit 256Mi (the injector's default)",
  ]);
  t.match(problemsOf(annotated({ 'outrigger.dev/cpu-request': '2', 'outrigger.dev/cpu-limit': '500m' })), [
    /^outrigger\.dev\/cpu-request: the cpu request 2 .* is more than the cpu limit 500m \(outrigger\.dev\/cpu-limit\)/,
  ]);
});

t.test('every bad annotation is reported at once', async (t) => {
  const problems = problemsOf(
    annotated({ 'outrigger.dev/app-port': 'x', 'outrigger.dev/log-level': 'x', 'outrigger.dev/cpu-request': 'x' }),
  );
  t.equal(problems.length, 3);
});

t.test('an unknown outrigger.dev/ annotation is a warning (a typo, most likely)', async (t) => {
  const result = annotated({ 'outrigger.dev/app_port': '8080', 'example.com/other': 'x' });
  t.ok('settings' in result);
  t.match('warnings' in result ? result.warnings : [], [
    /^unknown annotation outrigger\.dev\/app_port is ignored \(known: .*outrigger\.dev\/app-port/,
  ]);
  t.equal('warnings' in result ? result.warnings.length : -1, 1, 'other prefixes are not ours to judge');
});

t.test('volume mounts: volumes of the pod, at absolute paths in the sidecar', async (t) => {
  const mountsOf = (value: string, volumes = ['weather-token', 'ledger-tls']) =>
    readSettings(
      PodSchema.parse({
        metadata: {
          name: 'web',
          annotations: { 'outrigger.dev/inject': 'true', 'outrigger.dev/volume-mounts': value },
        },
        spec: {
          containers: [{ name: 'app', image: 'app:1' }],
          volumes: volumes.map((name) => ({ name, secret: { secretName: name } })),
        },
      }),
      config,
    );
  t.same(settingsOf(mountsOf('weather-token:/var/run/secrets/weather')).volumeMounts, [
    { volume: 'weather-token', path: '/var/run/secrets/weather' },
  ]);
  t.same(
    settingsOf(mountsOf(' weather-token : /var/run/secrets/weather,\n  ledger-tls:/etc/ledger/tls ')).volumeMounts,
    [
      { volume: 'weather-token', path: '/var/run/secrets/weather' },
      { volume: 'ledger-tls', path: '/etc/ledger/tls' },
    ],
    "in the annotation's order; blanks around entries (a folded YAML string) do not matter",
  );
  t.same(
    settingsOf(mountsOf('weather-token:/a,weather-token:/b')).volumeMounts?.map((mount) => mount.path),
    ['/a', '/b'],
    'one volume at two paths (Kubernetes allows it)',
  );
  t.same(
    settingsOf(mountsOf('weather-token:/var/run/weather,ledger-tls:/run/ledger')).volumeMounts,
    [
      { volume: 'weather-token', path: '/var/run/weather' },
      { volume: 'ledger-tls', path: '/run/ledger' },
    ],
    'beside each other after the /var/run link; each path as written',
  );
  t.equal(settingsOf(annotated({})).volumeMounts, undefined, 'none without the annotation');
  for (const path of [
    '/run/secrets/weather',
    '/var/run/secrets/weather',
    '/run/secrets/kubernetes.io.d',
    '/var/runner',
    '/binaries',
    '/sbin.d',
    '/library',
    '/lib64x',
    '/usr.d',
    '/var/lib/w',
    '/srv/bin',
    '/etc/hosts.d',
    '/application',
    '/devices',
  ]) {
    t.same(
      settingsOf(mountsOf(`weather-token:${path}`)).volumeMounts?.map((mount) => mount.path),
      [path],
      `${path}: beside the reserved paths, not on them`,
    );
  }

  const annotation = 'outrigger.dev/volume-mounts';
  const form = "expected VOLUME:PATH (a volume in the pod's spec.volumes and an absolute path in the sidecar)";
  const unnormalised = 'is not a normalised path (no ".", ".." or empty segments, no trailing "/")';
  const own = {
    tmp: "the sidecar's own mount /tmp, its writable /tmp",
    config: "the sidecar's own mount /etc/outrigger, its configuration file, from outrigger.dev/config",
    token: "the sidecar's own mount /var/run/secrets/kubernetes.io/serviceaccount, its ServiceAccount token",
  };
  // Each: the value, then the one problem without its "outrigger.dev/volume-mounts: " prefix.
  for (const [value, expected] of [
    ['', `"" is not valid: ${form}, separated by commas`],
    ['weather-token', `"weather-token" is not valid: ${form}`],
    [':/var/run/secrets/weather', `":/var/run/secrets/weather" is not valid: ${form}`],
    ['weather-token:', `"weather-token:" is not valid: ${form}`],
    ['weather-token:/w,', `"weather-token:/w," is not valid: an empty entry (a stray ",")`],
    [
      'weather:/var/run/secrets/weather',
      '"weather:/var/run/secrets/weather" is not valid: the pod has no volume "weather" in spec.volumes ' +
        '(it declares weather-token, ledger-tls)',
    ],
    ['weather-token:w', '"weather-token:w" is not valid: w is not an absolute path'],
    ['weather-token:/', `"weather-token:/" is not valid: the path may not be /, the sidecar's root`],
    ...['/var/../w', '/var/./w', '/var//w', '/var/w/', '/var/w/..'].map(
      (path) => [`weather-token:${path}`, `"weather-token:${path}" is not valid: ${path} ${unnormalised}`] as const,
    ),
    ['weather-token:/tmp', `"weather-token:/tmp" is not valid: /tmp overlaps ${own.tmp}`],
    ['weather-token:/tmp/w', `"weather-token:/tmp/w" is not valid: /tmp/w overlaps ${own.tmp}`],
    ['weather-token:/etc', `"weather-token:/etc" is not valid: /etc overlaps ${own.config}`],
    [
      'weather-token:/etc/outrigger',
      `"weather-token:/etc/outrigger" is not valid: /etc/outrigger overlaps ${own.config}`,
    ],
    [
      'weather-token:/var/run/secrets/kubernetes.io/serviceaccount',
      '"weather-token:/var/run/secrets/kubernetes.io/serviceaccount" is not valid: ' +
        `/var/run/secrets/kubernetes.io/serviceaccount overlaps ${own.token}`,
    ],
    [
      'weather-token:/var/run/secrets',
      `"weather-token:/var/run/secrets" is not valid: /var/run/secrets overlaps ${own.token}`,
    ],
    ['weather-token:/var/run', `"weather-token:/var/run" is not valid: /var/run overlaps ${own.token}`],
    // Over the token as written, though not where the link takes it (/var is not over /run): the read-only volume
    // would hide /var/run, and the token with it.
    ['weather-token:/var', `"weather-token:/var" is not valid: /var overlaps ${own.token}`],
    ['weather-token:/var,ledger-tls:/var/run/x', `"weather-token:/var" is not valid: /var overlaps ${own.token}`],
    ['ledger-tls:/var/run/x,weather-token:/var', `"weather-token:/var" is not valid: /var overlaps ${own.token}`],
    // The token's directory as the runtime finds it: /var/run is a link to /run in the image.
    ...[
      '/run',
      '/run/secrets',
      '/run/secrets/kubernetes.io',
      '/run/secrets/kubernetes.io/serviceaccount',
      '/run/secrets/kubernetes.io/serviceaccount/x',
    ].map(
      (path) =>
        [
          `weather-token:${path}`,
          `"weather-token:${path}" is not valid: ${path} overlaps ${own.token} (/var/run is a link to /run in the image)`,
        ] as const,
    ),
    ...(
      [
        ['/app', '/app', "the sidecar's program (the image's working directory)"],
        ['/app/sidecar/dist', '/app', "the sidecar's program (the image's working directory)"],
        ['/usr', '/usr', 'node and the libraries it needs'],
        ['/usr/local/bin', '/usr', 'node and the libraries it needs'],
        ['/dev', '/dev', "the container's devices and the kubelet's /dev/termination-log"],
        ['/dev/termination-log', '/dev', "the container's devices and the kubelet's /dev/termination-log"],
        ['/proc', '/proc', "the kernel's process files"],
        ['/sys', '/sys', "the kernel's sysfs"],
        ['/sys/fs', '/sys', "the kernel's sysfs"],
        ['/etc/hosts', '/etc/hosts', 'written by the kubelet'],
        ['/etc/hostname', '/etc/hostname', 'written by the kubelet'],
        ['/etc/resolv.conf', '/etc/resolv.conf', "written by the kubelet (the pod's DNS)"],
      ] as const
    ).map(
      ([path, reserved, what]) =>
        [
          `weather-token:${path}`,
          `"weather-token:${path}" is not valid: ${path} overlaps ${reserved}, ${what}`,
        ] as const,
    ),
    // In /usr as the runtime finds them: Debian bookworm links these into /usr (merged /usr).
    ...(
      [
        ['/bin', '/bin', '/usr/bin'],
        ['/bin/w', '/bin', '/usr/bin'],
        ['/sbin', '/sbin', '/usr/sbin'],
        ['/sbin/w', '/sbin', '/usr/sbin'],
        ['/lib', '/lib', '/usr/lib'],
        ['/lib/x86_64-linux-gnu', '/lib', '/usr/lib'],
        ['/lib64', '/lib64', '/usr/lib64'],
        ['/lib32', '/lib32', '/usr/lib32'],
        ['/libx32/w', '/libx32', '/usr/libx32'],
      ] as const
    ).map(
      ([path, link, target]) =>
        [
          `weather-token:${path}`,
          `"weather-token:${path}" is not valid: ${path} overlaps /usr, node and the libraries it needs ` +
            `(${link} is a link to ${target} in the image)`,
        ] as const,
    ),
    ['weather-token:/w,ledger-tls:/w', '"ledger-tls:/w" is not valid: /w is mounted twice'],
    ['weather-token:/w,weather-token:/w', '"weather-token:/w" is not valid: /w is mounted twice'],
    ['weather-token:/w,ledger-tls:/w/tls', '"ledger-tls:/w/tls" is not valid: /w/tls overlaps "weather-token:/w"'],
    ['ledger-tls:/w/tls,weather-token:/w', '"weather-token:/w" is not valid: /w overlaps "ledger-tls:/w/tls"'],
    // Where the runtime puts them: /var/run is a link to /run in the image.
    ...(
      [
        ['weather-token:/var/run/w,ledger-tls:/run/w/tls', '/run/w/tls', 'weather-token:/var/run/w'],
        ['weather-token:/run/w/tls,ledger-tls:/var/run/w', '/var/run/w', 'weather-token:/run/w/tls'],
        ['weather-token:/var/run/w,ledger-tls:/run/w', '/run/w', 'weather-token:/var/run/w'],
        ['weather-token:/run/w,weather-token:/var/run/w', '/var/run/w', 'weather-token:/run/w'],
      ] as const
    ).map(
      ([value, path, earlier]) =>
        [
          value,
          `${JSON.stringify(value.split(',')[1])} is not valid: ${path} overlaps ${JSON.stringify(earlier)} ` +
            '(/var/run is a link to /run in the image)',
        ] as const,
    ),
    [
      'weather-token:/var/run/w,ledger-tls:/var/run/w/tls',
      '"ledger-tls:/var/run/w/tls" is not valid: /var/run/w/tls overlaps "weather-token:/var/run/w"',
    ],
  ] as const) {
    t.same(problemsOf(mountsOf(value)), [`${annotation}: ${expected}`], JSON.stringify(value));
  }
  t.same(
    problemsOf(mountsOf('weather:/tmp', [])),
    [
      `${annotation}: "weather:/tmp" is not valid: the pod has no volume "weather" in spec.volumes (it declares none)`,
      `${annotation}: "weather:/tmp" is not valid: /tmp overlaps ${own.tmp}`,
    ],
    'every problem of an entry, at once',
  );
  t.same(
    problemsOf(mountsOf('weather-token:/var/run/secrets/weather,ledger:/etc/ledger,ledger-tls:etc')).length,
    2,
    'each bad entry is reported',
  );
});

t.test("outbox URL Secret: SECRET:KEY, a Secret of the pod's namespace and its key", async (t) => {
  const annotation = 'outrigger.dev/outbox-url-secret';
  t.same(settingsOf(annotated({ [annotation]: 'orders-db:url' })).outboxUrlSecret, { name: 'orders-db', key: 'url' });
  t.same(
    settingsOf(annotated({ [annotation]: 'orders.db-v2:DATABASE_URL.primary-1' })).outboxUrlSecret,
    { name: 'orders.db-v2', key: 'DATABASE_URL.primary-1' },
    'a dotted Secret name; a key with each character a key may have',
  );
  t.same(settingsOf(annotated({ [annotation]: 'db:.url' })).outboxUrlSecret, { name: 'db', key: '.url' }, 'a dot file');
  t.equal(settingsOf(annotated({})).outboxUrlSecret, undefined, 'no relay unless asked for');
  const known = annotated({ [annotation]: 'orders-db:url' });
  t.same('warnings' in known ? known.warnings : undefined, [], 'a known annotation: no warning');

  const form = "expected SECRET:KEY, a Secret in the pod's namespace and the key holding the URL";
  const name = (secret: string) =>
    `the Secret name ${JSON.stringify(secret)} is not a DNS subdomain (lowercase letters, digits, "-" and ".")`;
  const key = (k: string) =>
    `the key ${JSON.stringify(k)} is not a Secret key: letters, digits, "-", "_" and "." (at most 253), ` +
    'not "." or ".." nor starting with ".."';
  // Each: the value, then its problems without the 'outrigger.dev/outbox-url-secret: "<value>" is not valid: '.
  for (const [value, expected] of [
    ['', [form]],
    ['orders-db', [form]],
    ['orders-db/url', [form]],
    ['orders-db:url:primary', [form]],
    [':url', [name('')]],
    ['orders-db:', [key('')]],
    ['Orders_DB:url', [name('Orders_DB')]],
    ['-orders:url', [name('-orders')]],
    [`${'a'.repeat(254)}:url`, [name('a'.repeat(254))]],
    [
      'shop/orders-db:url',
      [`${name('shop/orders-db')}; the Secret is the pod's namespace's, named without a namespace`],
    ],
    ['orders-db:db url', [key('db url')]],
    ['orders-db:url/primary', [key('url/primary')]],
    ['orders-db:.', [key('.')]],
    ['orders-db:..', [key('..')]],
    ['orders-db:..data', [key('..data')]],
    [`orders-db:${'k'.repeat(254)}`, [key('k'.repeat(254))]],
    ['Orders:a b', [name('Orders'), key('a b')]],
  ] as const) {
    t.same(
      problemsOf(annotated({ [annotation]: value })),
      expected.map((problem) => `${annotation}: ${JSON.stringify(value)} is not valid: ${problem}`),
      JSON.stringify(value),
    );
  }
  t.same(
    settingsOf(annotated({ [annotation]: `${'a'.repeat(253)}:${'k'.repeat(253)}` })).outboxUrlSecret,
    { name: 'a'.repeat(253), key: 'k'.repeat(253) },
    'the longest name and key',
  );
});
