import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { isConfigError } from '../../config/load.ts';
import { VERSION } from '../../version.ts';
import { loadInjectorConfig } from './injector-config.ts';

const dir = mkdtempSync(join(tmpdir(), 'outrigger-injector-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const file = (text: string) => {
  const path = join(dir, `injector-${++files}.yaml`);
  writeFileSync(path, text);
  return path;
};

/** The problems loading `text` reports (empty when it loads). */
const problems = (text: string): string[] => {
  try {
    loadInjectorConfig(file(text));
    return [];
  } catch (error) {
    if (!isConfigError(error)) throw error;
    return error.problems;
  }
};

t.test('no file: every default, the image of this version', async (t) => {
  t.same(loadInjectorConfig(), {
    image: `ghcr.io/outrigger/outrigger:${VERSION}`,
    imagePullPolicy: 'IfNotPresent',
    httpPort: 3600,
    opsPort: 9464,
    logLevel: 'info',
    resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } },
    env: [],
  });
  t.equal(loadInjectorConfig(file('')).httpPort, 3600, 'an empty file is the defaults');
});

t.test('a full file', async (t) => {
  const config = loadInjectorConfig(
    file(`
image: registry.example/outrigger:1.2.3
imagePullPolicy: Always
httpPort: 3700
opsPort: 9500
logLevel: debug
resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 1, memory: 1Gi}}
brokerUrlSecret: {name: outrigger-broker, key: url}
env: [{name: OTEL_EXPORTER_OTLP_ENDPOINT, value: "http://collector:4318"}]
`),
  );
  t.equal(config.image, 'registry.example/outrigger:1.2.3');
  t.equal(config.imagePullPolicy, 'Always');
  t.equal(config.opsPort, 9500);
  t.same(config.resources, { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '1Gi' } });
  t.same(config.brokerUrlSecret, { name: 'outrigger-broker', key: 'url' });
  t.same(config.env, [{ name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://collector:4318' }]);
});

t.test('each mistake is named, with the file', async (t) => {
  const cases: [string, RegExp][] = [
    ['imag: x', /injector-\d+\.yaml: unknown field "imag"/],
    ['imagePullPolicy: Sometimes', /imagePullPolicy: expected one of "Always", "IfNotPresent", "Never"/],
    ['httpPort: 70000', /httpPort: expected a port number/],
    ['opsPort: 3600', /opsPort: must differ from httpPort/],
    ['logLevel: loud', /logLevel: expected one of/],
    ['resources: {requests: {memory: 64MB}}', /resources\.requests\.memory: expected a Kubernetes quantity/],
    [
      'resources: {requests: {memory: 1Gi}, limits: {memory: 256Mi}}',
      /requests\.memory: must not exceed limits\.memory/,
    ],
    ['resources: {requests: {gpu: "1"}}', /resources\.requests: unknown field "gpu"/],
    ['brokerUrlSecret: {name: Broker_Secret, key: url}', /brokerUrlSecret\.name: expected a Secret name/],
    ['env: [{name: 1BAD, value: x}]', /env\[0\]\.name: expected a variable name/],
    ['env: [{name: A, value: 1}]', /env\[0\]\.value: expected a string/],
    ['env: [{name: A, value: x}, {name: A, value: y}]', /env\[1\]\.name: duplicate variable "A"/],
    ['env: [{name: OUTRIGGER_APP_ID, value: x}]', /env\[0\]\.name: "OUTRIGGER_APP_ID" is set by the injector/],
    ['image: [a', /not valid YAML/],
    ['just a string', /expected a mapping of settings at the top level/],
    ['brokerUrlSecret: {name: broker}', /brokerUrlSecret\.key: required/],
    // The API server would refuse every injected pod's secretKeyRef with such a key.
    ['brokerUrlSecret: {name: broker, key: ..data}', /brokerUrlSecret\.key: expected a key: .*not "\." or "\.\." nor/],
    [
      'env: [{name: OUTRIGGER_OUTBOX_URL, value: "postgres://shop:pw@db/shop"}]',
      /env\[0\]\.name: "OUTRIGGER_OUTBOX_URL" is set by the injector, from a pod's outrigger\.dev\/outbox-url-secret \(each app has its own database\)/,
    ],
    ['resources: {requests: {cpu: -1}}', /resources\.requests\.cpu: expected a Kubernetes quantity/],
  ];
  for (const [text, expected] of cases) t.match(problems(text).join('\n'), expected, text);
});

t.test('the broker URL may be plain env only when it does not come from a Secret', async (t) => {
  t.same(problems('env: [{name: OUTRIGGER_BROKER_URL, value: "amqp://rabbitmq:5672"}]'), []);
  t.match(problems('brokerUrlSecret: {name: b, key: url}\nenv: [{name: OUTRIGGER_BROKER_URL, value: "amqp://x"}]'), [
    /"OUTRIGGER_BROKER_URL" is set by the injector/,
  ]);
});

t.test('a missing file is said plainly', async (t) => {
  t.throws(() => loadInjectorConfig(join(dir, 'absent.yaml')), /absent\.yaml: cannot read the file \(ENOENT\)/);
});
