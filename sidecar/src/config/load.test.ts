import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError, loadConfig, parseConfig } from './load.ts';

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
};

/** The one problem a raw config has (asserting there is exactly one). */
const problemOf = (t: Test, raw: unknown): string => {
  const problems = problemsOf(() => parseConfig(raw));
  t.equal(problems.length, 1, `one problem for ${JSON.stringify(raw)}: ${problems.join(' | ')}`);
  return problems[0] ?? '';
};

const push = { name: 'readings', topic: 'sensor.readings', route: '/events' };
const base = { appId: 'ingestion', app: { port: 8080 } };

t.test('defaults fill everything but appId', async (t) => {
  const config = parseConfig({ appId: 'ingestion' });
  t.same(config.http, { host: 'localhost', port: 3600, allowNonLoopback: false, bodyLimit: 1_048_576 });
  t.same(config.ops, { host: '0.0.0.0', port: 9464 });
  t.equal(config.broker.url, 'amqp://guest:guest@127.0.0.1:5672');
  t.equal(config.broker.heartbeat, 15_000);
  t.equal(config.app.healthInterval, 5_000);
  t.equal(config.log.level, 'info');
  t.equal(config.shutdown.grace, 20_000);
  t.same(config.subscriptions, []);
  t.same(config.targets, []);
});

t.test('a subscription gets the contract defaults, its group and prefetch', async (t) => {
  const [sub] = parseConfig({ ...base, subscriptions: [push] }).subscriptions;
  t.match(sub, {
    name: 'readings',
    mode: 'push',
    group: 'ingestion',
    concurrency: 16,
    prefetch: 32,
    timeout: 30_000,
    retry: { maxAttempts: 8, initial: 1_000, max: 300_000, multiplier: 2, jitter: 0.2 },
    deadLetter: true,
    ordered: false,
    queueType: 'classic',
  });
  const [ordered] = parseConfig({ ...base, subscriptions: [{ ...push, ordered: true, group: 'g1' }] }).subscriptions;
  t.equal(ordered?.concurrency, 1, 'ordered means one at a time');
  t.equal(ordered?.prefetch, 2);
  t.equal(ordered?.group, 'g1');
});

t.test('a target gets the contract defaults', async (t) => {
  const [target] = parseConfig({ ...base, targets: [{ name: 'payments', baseUrl: 'https://api.example' }] }).targets;
  t.match(target, {
    timeout: 10_000,
    retry: {
      maxAttempts: 3,
      initial: 100,
      max: 2_000,
      jitter: 'full',
      on: [502, 503, 504, 429, 'connect-error', 'reset'],
    },
    budget: { ratio: 0.2, minPerSecond: 10 },
    circuitBreaker: { consecutiveFailures: 5, halfOpenAfter: 10_000 },
    bulkhead: { maxConcurrent: 64, maxQueue: 128 },
    headers: {},
    followRedirects: false,
  });
});

t.test('the sampling breaker is the option: its defaults, and no failures-in-a-row count beside it', async (t) => {
  const [target] = parseConfig({
    ...base,
    targets: [{ name: 'p', baseUrl: 'https://api.example', circuitBreaker: { sampling: {} } }],
  }).targets;
  t.same(target?.circuitBreaker, {
    sampling: { failureRatio: 0.5, window: 30_000, minimumRps: 5 },
    halfOpenAfter: 10_000,
  });
  for (const [window, ms] of [
    ['1s', 1_000],
    ['10m', 600_000],
  ] as const) {
    const [bounded] = parseConfig({
      ...base,
      targets: [{ name: 'p', baseUrl: 'https://api.example', circuitBreaker: { sampling: { window } } }],
    }).targets;
    t.equal(bounded?.circuitBreaker.sampling?.window, ms, `a window of ${window} is accepted`);
  }
});

t.test('each field names itself when it is wrong', async (t) => {
  const cases: [unknown, string][] = [
    [{}, 'appId: required'],
    [{ appId: 'Ingestion_1' }, 'appId: expected a DNS label'],
    [{ ...base, extra: 1 }, 'unknown field "extra"'],
    [{ ...base, app: { port: 8080, prot: 1 } }, 'app: unknown field "prot"'],
    [{ ...base, app: { port: 70000 } }, 'app.port: expected a port number (1-65535)'],
    [{ ...base, app: { port: 8080, healthPath: 'healthz' } }, 'app.healthPath: expected a path starting with "/"'],
    [{ ...base, app: { port: 8080, healthInterval: '5' } }, 'app.healthInterval: expected a duration'],
    [{ ...base, broker: { url: 'http://rabbit' } }, 'broker.url: expected an amqp:// or amqps:// URL'],
    [{ ...base, broker: { heartbeat: 15 } }, 'broker.heartbeat: expected a duration'],
    [{ ...base, broker: { reconnect: { max: 'soon' } } }, 'broker.reconnect.max: expected a duration'],
    [{ ...base, http: { port: 'x' } }, 'http.port: expected a port number'],
    [{ ...base, http: { host: '0.0.0.0' } }, 'http.host: the app API listens on loopback only'],
    [{ ...base, http: { bodyLimit: '1 GB' } }, 'http.bodyLimit: expected a size'],
    [{ ...base, http: { port: 9000 }, ops: { port: 9000 } }, 'ops.port: must differ from http.port'],
    [{ ...base, auth: { apiToken: 'short' } }, 'auth.apiToken: expected at least 16 characters'],
    [
      { ...base, log: { level: 'verbose' } },
      'log.level: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent"',
    ],
    [{ ...base, shutdown: { grace: '-1s' } }, 'shutdown.grace: expected a duration'],
    [{ ...base, subscriptions: {} }, 'subscriptions: expected array'],
    [{ ...base, subscriptions: [{ ...push, name: 'a b' }] }, 'subscriptions[0].name: expected 1-100 characters'],
    [{ ...base, subscriptions: [{ ...push, topic: '.bad' }] }, 'subscriptions[0].topic: expected 1-200 characters'],
    [{ ...base, subscriptions: [{ ...push, topic: 'x'.repeat(201) }] }, 'subscriptions[0].topic: expected 1-200'],
    [{ ...base, subscriptions: [{ ...push, mode: 'poll' }] }, 'subscriptions[0].mode: expected one of "push", "pull"'],
    [{ ...base, subscriptions: [{ name: 'n', topic: 't' }] }, 'subscriptions[0].route: required when mode is push'],
    [{ ...base, subscriptions: [{ ...push, mode: 'pull' }] }, 'subscriptions[0].route: only allowed when mode is push'],
    [
      { ...base, subscriptions: [{ ...push, concurrency: 0 }] },
      'subscriptions[0].concurrency: expected a positive integer',
    ],
    [
      { ...base, subscriptions: [{ ...push, prefetch: 2.5 }] },
      'subscriptions[0].prefetch: expected a positive integer',
    ],
    [{ ...base, subscriptions: [{ ...push, timeout: 'forever' }] }, 'subscriptions[0].timeout: expected a duration'],
    [
      { ...base, subscriptions: [{ ...push, retry: { maxAttempts: -1 } }] },
      'subscriptions[0].retry.maxAttempts: expected a positive integer',
    ],
    [
      { ...base, subscriptions: [{ ...push, retry: { multiplier: 0.5 } }] },
      'subscriptions[0].retry.multiplier: expected a number of at least 1',
    ],
    [
      { ...base, subscriptions: [{ ...push, retry: { jitter: 2 } }] },
      'subscriptions[0].retry.jitter: expected a number between 0 and 1',
    ],
    [
      { ...base, subscriptions: [{ ...push, retry: { initial: '10m', max: '1m' } }] },
      'subscriptions[0].retry.initial: must not be longer than retry.max',
    ],
    [{ ...base, subscriptions: [{ ...push, deadLetter: 'yes' }] }, 'subscriptions[0].deadLetter: expected boolean'],
    [{ ...base, subscriptions: [{ ...push, queueType: 'stream' }] }, 'subscriptions[0].queueType: expected one of'],
    [{ ...base, subscriptions: [push, push] }, 'subscriptions[1].name: duplicate subscription name "readings"'],
    [{ appId: 'a', subscriptions: [push] }, 'subscriptions[0].mode: push delivery needs app.port'],
    [{ appId: 'a', app: { healthPath: '/healthz' } }, 'app.healthPath: the health check needs app.port'],
    [{ ...base, targets: [{ name: 'p', baseUrl: 'ftp://x' }] }, 'targets[0].baseUrl: expected an absolute http://'],
    [{ ...base, targets: [{ name: 'p' }] }, 'targets[0].baseUrl: required'],
    [
      { ...base, targets: [{ name: 'p', baseUrl: 'http://x', retry: { on: [200] } }] },
      'targets[0].retry.on[0]: expected an HTTP status (400-599)',
    ],
    [
      { ...base, targets: [{ name: 'p', baseUrl: 'http://x', budget: { ratio: 1.5 } }] },
      'targets[0].budget.ratio: expected a number between 0 and 1',
    ],
    [
      {
        ...base,
        targets: [{ name: 'p', baseUrl: 'http://x', circuitBreaker: { consecutiveFailures: 3, sampling: {} } }],
      },
      'targets[0].circuitBreaker: set consecutiveFailures or sampling, not both',
    ],
    [
      { ...base, targets: [{ name: 'p', baseUrl: 'http://x', circuitBreaker: { sampling: { failureRatio: 1 } } }] },
      'targets[0].circuitBreaker.sampling.failureRatio: expected a number greater than 0 and less than 1',
    ],
    [
      { ...base, targets: [{ name: 'p', baseUrl: 'http://x', circuitBreaker: { sampling: { window: '0s' } } }] },
      'targets[0].circuitBreaker.sampling.window: expected a window from 1s to 10m',
    ],
    [
      { ...base, targets: [{ name: 'p', baseUrl: 'http://x', circuitBreaker: { sampling: { window: '999ms' } } }] },
      'targets[0].circuitBreaker.sampling.window: expected a window from 1s to 10m',
    ],
    [
      { ...base, targets: [{ name: 'p', baseUrl: 'http://x', circuitBreaker: { sampling: { window: '365d' } } }] },
      'targets[0].circuitBreaker.sampling.window: expected a window from 1s to 10m',
    ],
    [
      { ...base, targets: [{ name: 'p', baseUrl: 'http://x', headers: { authorization: { secret: 'X' } } }] },
      'targets[0].headers.authorization: expected {value: ...}, {secretEnv: NAME} or {secretFile: PATH}',
    ],
    [
      { ...base, targets: [{ name: 'p', baseUrl: 'http://x', bulkhead: { maxConcurrent: 0 } }] },
      'targets[0].bulkhead.maxConcurrent: expected a positive integer',
    ],
    [
      { ...base, targets: [{ name: 'p', baseUrl: 'http://x', tls: { caFile: '/ca.pem' } }] },
      'targets[0].tls: only for an https:// baseUrl',
    ],
    [
      { ...base, targets: [{ name: 'p', baseUrl: 'https://x', tls: { certFile: '/tls.crt' } }] },
      'targets[0].tls: set certFile and keyFile together',
    ],
    [
      { ...base, targets: [{ name: 'p', baseUrl: 'https://x', tls: { serverName: '10.0.0.1' } }] },
      'targets[0].tls.serverName: expected a DNS name, not an IP address',
    ],
    [
      { ...base, targets: [{ name: 'p', baseUrl: 'https://x', tls: { serverName: 'a..b' } }] },
      'targets[0].tls.serverName: expected a DNS name',
    ],
    [
      { ...base, targets: [{ name: 'p', baseUrl: 'https://x', tls: { insecure: true } }] },
      'targets[0].tls: unknown field "insecure"',
    ],
    [
      {
        ...base,
        targets: [
          { name: 'p', baseUrl: 'http://x' },
          { name: 'p', baseUrl: 'http://y' },
        ],
      },
      'targets[1].name: duplicate target name "p"',
    ],
  ];
  for (const [raw, expected] of cases) {
    const problem = problemOf(t, raw);
    t.ok(problem.startsWith(expected), `${problem}\n  starts with ${expected}`);
  }
});

t.test('non-loopback app API only when the operator says so', async (t) => {
  const config = parseConfig({ ...base, http: { host: '0.0.0.0', allowNonLoopback: true } });
  t.equal(config.http.host, '0.0.0.0');
  for (const host of ['localhost', '127.0.0.1', '::1'])
    t.equal(parseConfig({ ...base, http: { host } }).http.host, host);
});

t.test('sizes and durations in the file', async (t) => {
  const config = parseConfig({ ...base, http: { bodyLimit: '512KiB' }, shutdown: { grace: 'PT1M' } });
  t.equal(config.http.bodyLimit, 524_288);
  t.equal(config.shutdown.grace, 60_000);
  t.equal(parseConfig({ ...base, http: { bodyLimit: 2048 } }).http.bodyLimit, 2048);
});

const dir = mkdtempSync(join(tmpdir(), 'outrigger-config-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

t.test('a YAML file, then the environment over it', async (t) => {
  const path = file(
    'ok.yaml',
    'appId: ingestion\napp: {port: 8080}\nhttp: {port: 3601}\nsubscriptions:\n  - {name: r, topic: t, route: /e}\n',
  );
  const plain = loadConfig({ file: path, env: {} }).config;
  t.equal(plain.http.port, 3601);
  t.equal(plain.subscriptions[0]?.group, 'ingestion');

  const env = {
    OUTRIGGER_APP_ID: 'other',
    OUTRIGGER_BROKER_URL: 'amqps://u:p@rabbit:5671/vh',
    OUTRIGGER_HTTP_PORT: '4000',
    OUTRIGGER_OPS_PORT: '4001',
    OUTRIGGER_APP_PORT: '9090',
    OUTRIGGER_API_TOKEN: 'a-token-of-16-chars',
    OUTRIGGER_APP_TOKEN: 'another-token-16-chars',
    OUTRIGGER_LOG_LEVEL: 'debug',
  };
  const config = loadConfig({ file: path, env }).config;
  t.equal(config.appId, 'other');
  t.equal(config.broker.url, 'amqps://u:p@rabbit:5671/vh');
  t.equal(config.http.port, 4000);
  t.equal(config.ops.port, 4001);
  t.equal(config.app.port, 9090);
  t.equal(config.auth.apiToken, 'a-token-of-16-chars');
  t.equal(config.auth.appToken, 'another-token-16-chars');
  t.equal(config.log.level, 'debug');
  t.equal(config.subscriptions[0]?.group, 'other', 'the group default follows the effective app id');
});

t.test('the environment alone is a configuration', async (t) => {
  const config = loadConfig({ env: { OUTRIGGER_APP_ID: 'solo', OUTRIGGER_HTTP_PORT: '' } }).config;
  t.equal(config.appId, 'solo');
  t.equal(config.http.port, 3600, 'an empty variable counts as unset');
  t.same(
    problemsOf(() => loadConfig({ env: {} })),
    ['configuration: appId: required'],
  );
});

t.test('which settings the environment set, and what the file had said', async (t) => {
  const path = file('sources.yaml', 'appId: ingestion\nkubernetes: {watch: true}\nlog: {level: warn}\n');
  const { config, fromEnv } = loadConfig({
    file: path,
    env: {
      OUTRIGGER_KUBERNETES: 'true',
      OUTRIGGER_LOG_LEVEL: 'debug',
      OUTRIGGER_HTTP_PORT: '4000',
      OUTRIGGER_APP_PORT: '',
    },
  });
  t.equal(config.log.level, 'debug');
  t.same(
    Object.fromEntries(fromEnv),
    {
      'http.port': { variable: 'OUTRIGGER_HTTP_PORT', fileValue: undefined },
      'log.level': { variable: 'OUTRIGGER_LOG_LEVEL', fileValue: 'warn' },
      'kubernetes.watch': { variable: 'OUTRIGGER_KUBERNETES', fileValue: true },
    },
    'not appId (from the file) nor app.port (an empty variable)',
  );
  const alone = loadConfig({ env: { OUTRIGGER_APP_ID: 'solo', OUTRIGGER_KUBERNETES: 'true' } });
  t.same(alone.fromEnv.get('kubernetes.watch'), { variable: 'OUTRIGGER_KUBERNETES', fileValue: undefined });
  t.equal(alone.config.kubernetes.watch, true);
  t.equal(alone.file, undefined, 'no file');
  t.equal(loadConfig({ file: path, env: {} }).file, path, 'the file it was read from');
});

t.test('a bad environment variable is named', async (t) => {
  const path = file('env.yaml', 'appId: ingestion\n');
  t.same(
    problemsOf(() => loadConfig({ file: path, env: { OUTRIGGER_HTTP_PORT: 'eighty' } })),
    [`${path}: http.port (from OUTRIGGER_HTTP_PORT): expected a port number (0-65535; 0 picks a free port)`],
  );
  t.same(
    problemsOf(() => loadConfig({ file: path, env: { OUTRIGGER_LOG_LEVEL: 'loud' } })),
    [
      `${path}: log.level (from OUTRIGGER_LOG_LEVEL): expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent"`,
    ],
  );
});

t.test('file problems are one line each', async (t) => {
  const missing = join(dir, 'nope.yaml');
  t.same(
    problemsOf(() => loadConfig({ file: missing, env: {} })),
    [`${missing}: cannot read the file (ENOENT)`],
  );
  const broken = file('broken.yaml', 'appId: a\napp: {port: 8080\n');
  const [problem] = problemsOf(() => loadConfig({ file: broken, env: {} }));
  t.match(problem, new RegExp(`^${broken}: not valid YAML: .+ at line 3, column 1$`));
  const list = file('list.yaml', '- appId: a\n');
  t.same(
    problemsOf(() => loadConfig({ file: list, env: {} })),
    [`${list}: expected a mapping of settings at the top level`],
  );
  const empty = file('empty.yaml', '');
  t.same(
    problemsOf(() => loadConfig({ file: empty, env: {} })),
    [`${empty}: appId: required`],
  );
});

t.test('every problem is reported, not just the first', async (t) => {
  const problems = problemsOf(() => parseConfig({ appId: 'x', http: { port: 70000 }, log: { level: 'no' } }));
  t.equal(problems.length, 2);
});

t.test('the outbox: off unless configured; its defaults; OUTRIGGER_OUTBOX_URL turns it on', async (t) => {
  t.equal(parseConfig(base).outbox, undefined, 'no outbox relay unless asked for');
  t.same(parseConfig({ ...base, outbox: { url: 'postgres://app@db:5432/shop' } }).outbox, {
    url: 'postgres://app@db:5432/shop',
    table: 'outrigger_outbox',
    createTable: true,
    batchSize: 100,
    unroutable: 'park',
    pollInterval: 5_000,
  });
  const { config, fromEnv } = loadConfig({
    env: { OUTRIGGER_APP_ID: 'shop', OUTRIGGER_OUTBOX_URL: 'postgresql://app:secret@db/shop' },
  });
  t.equal(config.outbox?.url, 'postgresql://app:secret@db/shop');
  t.equal(fromEnv.get('outbox.url')?.variable, 'OUTRIGGER_OUTBOX_URL');
  t.equal(
    parseConfig({ ...base, outbox: { url: 'postgres://db/x', table: 'sales.outbox' } }).outbox?.table,
    'sales.outbox',
  );
});

t.test('a duration waited out on a timer is at most 24d: a longer timer would fire at once', async (t) => {
  const url = 'postgres://db/shop';
  for (const [raw, field] of [
    [{ ...base, app: { port: 8080, healthInterval: '25d' } }, 'app.healthInterval'],
    [{ ...base, broker: { reconnect: { max: '25d' } } }, 'broker.reconnect.max'],
    [{ ...base, broker: { reconnect: { initial: '25d' } } }, 'broker.reconnect.initial'],
    [{ ...base, shutdown: { grace: '30d' } }, 'shutdown.grace'],
    [{ ...base, outbox: { url, pollInterval: '25d' } }, 'outbox.pollInterval'],
  ] as const) {
    t.equal(problemOf(t, raw), `${field}: expected at most 24d`, field);
  }
  t.equal(parseConfig({ ...base, shutdown: { grace: '24d' } }).shutdown.grace, 24 * 86_400_000, '24d itself is taken');
});

t.test('outbox fields name themselves when wrong', async (t) => {
  const url = 'postgres://db/shop';
  t.equal(problemOf(t, { ...base, outbox: {} }), 'outbox.url: required');
  t.match(problemOf(t, { ...base, outbox: { url: 'mysql://db/shop' } }), /^outbox\.url: expected a postgres:\/\//);
  for (const table of ['Outbox', 'a.b.c', 'drop table x', '"quoted"', `t${'x'.repeat(55)}`, '1outbox']) {
    t.match(problemOf(t, { ...base, outbox: { url, table } }), /^outbox\.table: expected a table name/, table);
  }
  t.match(problemOf(t, { ...base, outbox: { url, batchSize: 0 } }), /^outbox\.batchSize: expected a positive/);
  t.match(problemOf(t, { ...base, outbox: { url, batchSize: 1001 } }), /^outbox\.batchSize: expected at most 1000/);
  t.match(problemOf(t, { ...base, outbox: { url, pollInterval: '10ms' } }), /^outbox\.pollInterval: expected at least/);
  t.match(
    problemOf(t, { ...base, outbox: { url, unroutable: 'drop' } }),
    /^outbox\.unroutable: expected one of "park", "delete"/,
  );
  t.match(problemOf(t, { ...base, outbox: { url, ordered: true } }), /^outbox: unknown field "ordered"/);
  t.equal(
    parseConfig({ ...base, outbox: { url, table: `s${'x'.repeat(62)}.t${'x'.repeat(54)}` } }).outbox?.table.length,
    119,
  );
});
