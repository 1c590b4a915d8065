// charts/sandbox and the dev loop around it, checked against real things:
// helm lint and template with default and other values; values.schema.json
// refusing typos; labels, security and least-privilege RBAC on every object;
// the demo pods admitted by the real injector as the sandbox configures it,
// their sidecars' configuration loaded by the real loader, the apps' env
// what their programs read; the weather API left without a sidecar, behind
// Toxiproxy, and ingestion's target for it riding out the chaos scripts;
// the dashboard's PromQL naming only series a real sidecar process (one relaying
// an outbox) exports;
// both charts installed into a real kube-apiserver (and a server-side dry run
// of other values); skaffold.yaml, kind-config.yaml and k8s/ agreeing with the
// charts; the Dockerfiles (the image's node flags are the launcher's); the
// chaos scripts against a real Toxiproxy.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ApiException, type KubernetesObject, KubernetesObjectApi } from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../src/config/load.ts';
import { loadInjectorConfig } from '../src/k8s/injector/injector-config.ts';
import { decide } from '../src/k8s/injector/mutate.ts';
import { startApp } from './support/app-server.ts';
import { CHARTS, createHelm, parseObjects } from './support/helm.ts';
import { BROKER_URL, deleteQueuesAtEnd, uniqueTopic } from './support/in-process.ts';
import { admissionReview, type EnvVar, patchOf, sidecarOf } from './support/injected-sidecar.ts';
import { startControlPlane } from './support/kube.ts';
import { freePort } from './support/ports.ts';
import { DATABASE_URL, database, insertRows, uniqueTable } from './support/postgres.ts';
import { type ParsedFamily, parseExposition } from './support/promparse.ts';
import { configFile, startSidecar } from './support/sidecar-process.ts';
import { TOXIPROXY_SERVER } from './support/toxiproxy.ts';
import { circuitOf, reply, sidecarWith, startUpstream } from './support/upstream.ts';
import { until } from './support/wait.ts';

// promparse may need building, and the API server takes a few seconds to start.
t.setTimeout(300_000);

const ROOT = new URL('../../', import.meta.url).pathname;
const SANDBOX = join(CHARTS, 'sandbox');
const OUTRIGGER = join(CHARTS, 'outrigger');
const NAMESPACE = 'outrigger-sandbox';
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const yamlFile = (path: string) => parseYaml(read(path)) as Record<string, unknown>;
const run = promisify(execFile);

/** The demo services' Deployments, by default. */
const DEMO_DEPLOYMENTS = ['sandbox-ingestion', 'sandbox-sensor-sim', 'sandbox-calibration'];

/** Values unlike the defaults in every way the templates branch on. */
const OTHER_VALUES = {
  fullnameOverride: 'lab',
  rabbitmq: { persistence: { enabled: false }, service: { type: 'NodePort', managementNodePort: 31673 } },
  postgres: { persistence: { enabled: true, size: '5Gi', storageClass: 'fast' } },
  prometheus: { extraNamespaces: ['shop'], service: { type: 'NodePort', nodePort: 30091 } },
  grafana: { anonymousRole: '' },
  brokerSecret: { name: 'amqp-url', key: 'uri' },
  demo: { enabled: false },
};

type Obj = KubernetesObject & { spec?: Record<string, unknown>; data?: Record<string, string> };
type PodSpec = {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: Record<string, unknown>;
  hostNetwork?: boolean;
};
type Container = { name: string; image: string; securityContext?: Record<string, unknown>; ports?: object[] };

const find = (objects: Obj[], kind: string, name: string) => {
  const found = objects.find((object) => object.kind === kind && object.metadata?.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in the render`);
  return found;
};
const podTemplate = (object: Obj) =>
  object.spec?.template as
    | { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec }
    | undefined;
const portsOf = (service: Obj) =>
  (service.spec?.ports ?? []) as { name: string; port: number; targetPort: string | number; nodePort?: number }[];

/** The sandbox's Toxiproxy proxies, as its ConfigMap loads them (`prefix`: the release's fullname). */
const sandboxProxies = (objects: Obj[], prefix = 'sandbox') =>
  JSON.parse(find(objects, 'ConfigMap', `${prefix}-toxiproxy`).data?.['proxies.json'] ?? '') as {
    name: string;
    listen: string;
    upstream: string;
  }[];

/** The configuration file of ingestion's sidecar, from its ConfigMap. */
const ingestionConfig = (objects: Obj[]) =>
  parseYaml(find(objects, 'ConfigMap', 'sandbox-ingestion-outrigger').data?.['outrigger.yaml'] ?? '');

t.test('helm lint --strict passes with the defaults, the kind values and other values', async (t) => {
  const helm = await createHelm(t);
  for (const [what, args] of [
    ['defaults', []],
    ['k8s/sandbox-values.yaml', ['-f', join(ROOT, 'k8s/sandbox-values.yaml')]],
    ['other values', await helm.values(OTHER_VALUES)],
  ] as const) {
    const result = await helm.run(['lint', '--strict', SANDBOX, ...args]);
    t.equal(result.code, 0, `${what}: ${result.stdout}${result.stderr}`);
  }
});

t.test('values.schema.json refuses a misspelt key, an unpinned image and unknown choices', async (t) => {
  const helm = await createHelm(t);
  for (const [set, complaint] of [
    ['rabbitmq.usernme=x', /usernme/],
    ['rabbitmq.image=rabbitmq:latest', /rabbitmq\/image/],
    ['grafana.image=grafana/grafana', /grafana\/image/],
    ['grafana.anonymousRole=Root', /anonymousRole/],
    ['prometheus.service.type=LoadBalancer', /prometheus\/service\/type/],
    ['demo.calibration.enabeld=false', /enabeld/],
    ['demo.calibration.enabled=maybe', /calibration\/enabled/],
    ['demo.calibration.rollbackEvery=0', /calibration\/rollbackEvery/],
    ['demo.calibration.intervalSeconds=0', /calibration\/intervalSeconds/],
    ['demo.calibration.image.tag=0.1.0:latest', /calibration\/image\/tag/],
    ['demo.calibration.image.pullPolicy=Sometimes', /calibration\/image\/pullPolicy/],
    ['demo.weatherApi.enabeld=false', /enabeld/],
    ['demo.weatherApi.enabled=maybe', /weatherApi\/enabled/],
    ['demo.weatherApi.failEvery=-1', /weatherApi\/failEvery/],
    ['demo.weatherApi.failEvery=often', /weatherApi\/failEvery/],
    ['demo.weatherApi.replicas=1.5', /weatherApi\/replicas/],
    ['demo.weatherApi.image.repository=', /weatherApi\/image\/repository/],
    ['demo.weatherApi.image.tag=0.1.0:latest', /weatherApi\/image\/tag/],
    ['demo.weatherApi.image.pullPolicy=Sometimes', /weatherApi\/image\/pullPolicy/],
    ['demo.weatherApi.resources.requests.cpu=lots', /weatherApi\/resources\/requests\/cpu/],
    ['demo.weatherApi.resources.limit.memory=1Gi', /limit/],
    ['demo.sensorId=null', /missing property 'sensorId'/],
    ['demo.sensorId=a/b', /demo\/sensorId/],
  ] as const) {
    const result = await helm.run(['template', 'sandbox', SANDBOX, '--set', set]);
    t.not(result.code, 0, `--set ${set} is refused`);
    t.match(result.stderr, complaint, `and the error names it (${set})`);
  }
});

t.test('every object: app.kubernetes.io labels, restricted pod security, nothing exposed unasked', async (t) => {
  const helm = await createHelm(t);
  const renders = {
    defaults: (await helm.template(SANDBOX, 'sandbox', NAMESPACE)) as Obj[],
    other: (await helm.template(SANDBOX, 'sandbox', NAMESPACE, OTHER_VALUES)) as Obj[],
  };
  for (const [what, objects] of Object.entries(renders)) {
    t.ok(objects.length > 20, `${what}: ${objects.length} objects`);
    for (const object of objects) {
      const id = `${what}: ${object.kind} ${object.metadata?.name}`;
      const labels = object.metadata?.labels ?? {};
      for (const key of ['name', 'instance', 'component', 'version', 'managed-by', 'part-of']) {
        t.ok(labels[`app.kubernetes.io/${key}`], `${id} has app.kubernetes.io/${key}`);
      }
      t.equal(labels['app.kubernetes.io/managed-by'], 'Helm', id);
      t.not(object.spec?.type, 'LoadBalancer', `${id} is not a LoadBalancer`);
      const template = podTemplate(object);
      if (!template) continue;
      const selector = (object.spec?.selector as { matchLabels?: Record<string, string> } | undefined)?.matchLabels;
      t.ok(selector, `${id} selects its pods by label`);
      t.match(template.metadata.labels, selector, `${id}: the pods carry the selector's labels`);
      t.match(template.spec.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } }, id);
      t.notOk(template.spec.hostNetwork, `${id}: no host network`);
      for (const container of [...template.spec.containers, ...(template.spec.initContainers ?? [])]) {
        t.match(container.securityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }, id);
        t.notMatch(JSON.stringify(container.ports ?? []), /hostPort/, `${id}/${container.name}: no host port`);
        t.match(container.image, /^[^:]+(:[^:]+|@sha256:[a-f0-9]{64})$/, `${id}/${container.image} names a tag`);
        t.notMatch(container.image, /:latest$/, `${id}: not :latest`);
      }
    }
  }
  const nodePorts = (objects: Obj[]) =>
    objects
      .filter((object) => object.kind === 'Service' && object.spec?.type === 'NodePort')
      .map((s) => s.metadata?.name);
  t.same(nodePorts(renders.defaults), [], 'by default every Service stays inside the cluster');
  t.same(nodePorts(renders.other).sort(), ['lab-prometheus', 'lab-rabbitmq'], 'NodePorts only where asked');
  const demo = (objects: Obj[]) =>
    objects.filter((object) => /ingestion|sensor-sim|calibration|weather/.test(object.metadata?.name ?? ''));
  t.equal(demo(renders.other).length, 0, 'demo.enabled=false leaves the demo services out');
  for (const name of DEMO_DEPLOYMENTS) {
    const annotations = podTemplate(find(renders.defaults, 'Deployment', name))?.metadata.annotations ?? {};
    t.equal(annotations['outrigger.dev/inject'], 'true', `${name} is annotated for injection`);
  }
  // The weather API stands for a third party: no sidecar, nothing of Kubernetes' API.
  const weather = podTemplate(find(renders.defaults, 'Deployment', 'sandbox-weather-api'));
  t.same(weather?.metadata.annotations ?? {}, {}, 'the weather API is not annotated for injection');
  t.equal(
    (weather?.spec as { automountServiceAccountToken?: boolean } | undefined)?.automountServiceAccountToken,
    false,
    'nor given a service account token',
  );
});

const prometheusName = (values: { fullnameOverride?: string }) => `${values.fullnameOverride ?? 'sandbox'}-prometheus`;

t.test('Prometheus may only get, list and watch pods in the namespaces it scrapes', async (t) => {
  const helm = await createHelm(t);
  for (const [values, namespaces] of [
    [{}, [NAMESPACE]],
    [OTHER_VALUES, [NAMESPACE, 'shop']],
  ] as const) {
    const objects = (await helm.template(SANDBOX, 'sandbox', NAMESPACE, values)) as Obj[];
    t.same(
      objects.filter((object) => /^Cluster/.test(object.kind ?? '')),
      [],
      'no ClusterRole or ClusterRoleBinding',
    );
    const roles = objects.filter((object) => object.kind === 'Role');
    t.same(roles.map((role) => role.metadata?.namespace).sort(), [...namespaces].sort());
    for (const role of roles) {
      t.same((role as unknown as { rules: unknown }).rules, [
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      ]);
    }
    const config = parseYaml(find(objects, 'ConfigMap', prometheusName(values)).data?.['prometheus.yaml'] ?? '');
    const sidecars = config.scrape_configs.find((job: { job_name: string }) => job.job_name === 'outrigger-sidecars');
    t.same(sidecars.kubernetes_sd_configs[0].namespaces.names, namespaces, 'and scrapes exactly those');
  }
});
t.test('the broker Secret, Toxiproxy and RabbitMQ agree: apps reach the broker through the proxy', async (t) => {
  const helm = await createHelm(t);
  for (const values of [{}, OTHER_VALUES]) {
    const objects = (await helm.template(SANDBOX, 'sandbox', NAMESPACE, values)) as Obj[];
    const prefix = (values as { fullnameOverride?: string }).fullnameOverride ?? 'sandbox';
    const secret =
      values === OTHER_VALUES ? { name: 'amqp-url', key: 'uri' } : { name: 'outrigger-broker', key: 'url' };
    const stringData = (name: string) =>
      (find(objects, 'Secret', name) as { stringData?: Record<string, string> }).stringData ?? {};
    const url = new URL(stringData(secret.name)[secret.key] ?? '');
    t.equal(`${url.protocol}//${url.host}`, `amqp://${prefix}-toxiproxy:5672`, 'the broker URL is the proxy');
    t.equal(url.password, stringData(`${prefix}-rabbitmq`).password, "with RabbitMQ's generated password");
    t.equal(url.username, stringData(`${prefix}-rabbitmq`).username);
    const db = new URL(stringData(`${prefix}-postgres`).url ?? '');
    t.equal(db.host, `${prefix}-toxiproxy:5432`, 'the database URL is the proxy too');
    t.equal(db.password, stringData(`${prefix}-postgres`).password);
    const proxies = sandboxProxies(objects, prefix);
    // The weather API is a demo service: without the demo, no proxy for it.
    const demo = values !== OTHER_VALUES;
    t.same(
      proxies.map((proxy) => [proxy.name, proxy.upstream]),
      [
        ['rabbitmq', `${prefix}-rabbitmq:5672`],
        ['postgres', `${prefix}-postgres:5432`],
        ...(demo ? [['weather', `${prefix}-weather-api:8090`]] : []),
      ],
    );
    const ports = portsOf(find(objects, 'Service', `${prefix}-toxiproxy`)).map((p) => p.port);
    t.same(
      ports,
      [5672, 5432, ...(demo ? [8090] : [])],
      'the proxy Service exposes the proxies, not the Toxiproxy API',
    );
    if (demo) {
      t.same(
        portsOf(find(objects, 'Service', `${prefix}-weather-api`)).map((p) => p.port),
        [8090],
        "the weather proxy's upstream is the weather API's Service",
      );
    }
  }
});

/** A volume of the injector's patch: a ConfigMap's for the sidecar's configuration file. */
type Volume = { name: string; configMap?: { name: string; items: { key: string; path: string }[] } };
type DemoContainer = Container & { env?: EnvVar[] };

/** The injector's configuration file as charts/outrigger renders it with k8s/outrigger-values.yaml (the sandbox's). */
async function sandboxInjectorConfig(t: Test) {
  const helm = await createHelm(t);
  const platform = (await helm.template(
    OUTRIGGER,
    'outrigger',
    'outrigger-system',
    yamlFile('k8s/outrigger-values.yaml'),
  )) as Obj[];
  return loadInjectorConfig(
    configFile(t, find(platform, 'ConfigMap', 'outrigger-injector').data?.['config.yaml'] ?? ''),
  );
}

t.test(
  "the demo pods: admitted by the sandbox's injector, their sidecars' files load, their env is what the programs read",
  async (t) => {
    const helm = await createHelm(t);
    const injector = await sandboxInjectorConfig(t);
    const objects = (await helm.template(SANDBOX, 'sandbox', NAMESPACE, yamlFile('k8s/sandbox-values.yaml'))) as Obj[];
    const secretValue = (ref: { name: string; key: string }) =>
      (find(objects, 'Secret', ref.name) as { stringData?: Record<string, string> }).stringData?.[ref.key];
    const dir = await mkdtemp(join(tmpdir(), 'outrigger-demo-config-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));

    /** What the injector decides for a pod of a Deployment. */
    const review = (name: string) => {
      const template = podTemplate(find(objects, 'Deployment', name));
      if (!template) throw new Error(`${name} has no pod template`);
      const podName = `${name}-7d9f8-x1y2z`;
      const pod = { metadata: { ...template.metadata, name: podName, namespace: NAMESPACE }, spec: template.spec };
      const admission = admissionReview(pod, { uid: name, namespace: NAMESPACE });
      return { template, podName, decision: decide(admission, injector) };
    };

    /** The pod of a Deployment as the injector reads it, its sidecar's env and configuration as the sidecar loads them. */
    const admit = async (name: string) => {
      const { template, podName, decision } = review(name);
      t.equal(decision.result, 'injected', `${name}: injected (${decision.reason})`);
      t.equal(decision.response.warnings, undefined, `${name}: no warnings (unknown annotations, ports)`);
      // The sidecar and its volumes as the injector's patch adds them.
      const patch = patchOf(decision.response.patch);
      const sidecar = sidecarOf(patch);
      const sidecarEnv = sidecar.env;
      // Every Secret the pod reads, the app's and the sidecar's, is rendered with that key.
      const containers = template.spec.containers as DemoContainer[];
      for (const variable of [...sidecarEnv, ...containers.flatMap((container) => container.env ?? [])]) {
        const ref = variable.valueFrom?.secretKeyRef;
        if (ref) t.ok(secretValue(ref), `${name}: ${variable.name} from Secret ${ref.name}, key ${ref.key}, rendered`);
      }
      // The sidecar's configuration: its file from the ConfigMap the annotation names, under the injected env.
      const env: NodeJS.ProcessEnv = {};
      const fields: Record<string, string> = { 'metadata.name': podName, 'metadata.namespace': NAMESPACE };
      for (const variable of sidecarEnv) {
        const { secretKeyRef, fieldRef } = variable.valueFrom ?? {};
        env[variable.name] = secretKeyRef
          ? secretValue(secretKeyRef)
          : fieldRef
            ? fields[fieldRef.fieldPath]
            : variable.value;
      }
      // The file its --config names: an item of the ConfigMap volume the patch adds, where the sidecar mounts it.
      const configAt = sidecar.args.indexOf('--config');
      const configPath = configAt === -1 ? undefined : sidecar.args[configAt + 1];
      const volumes = patch.flatMap(({ path, value }) =>
        path === '/spec/volumes' ? (value as Volume[]) : path === '/spec/volumes/-' ? [value as Volume] : [],
      );
      let configMap: string | undefined;
      let file: string | undefined;
      if (configPath !== undefined) {
        const mount = sidecar.volumeMounts.find(({ mountPath }) => configPath.startsWith(`${mountPath}/`));
        const source = volumes.find((volume) => volume.name === mount?.name)?.configMap;
        const item = source?.items.find(({ path }) => `${mount?.mountPath}/${path}` === configPath);
        if (source === undefined || item === undefined) {
          throw new Error(`${name}: ${configPath} is mounted from no ConfigMap`);
        }
        configMap = source.name;
        file = join(dir, `${name}.yaml`);
        await writeFile(file, find(objects, 'ConfigMap', configMap).data?.[item.key] ?? '');
      }
      const { config } = loadConfig({ file, env });
      t.equal(config.appId, template.metadata.annotations?.['outrigger.dev/app-id'], `${name}: its app id`);
      return { template, containers, sidecarEnv, config, configMap };
    };

    const [ingestion, sensorSim, calibration] = await Promise.all(DEMO_DEPLOYMENTS.map(admit));
    if (!ingestion || !sensorSim || !calibration) throw new Error('a demo Deployment is missing');
    t.equal(sensorSim.configMap, undefined, 'sensor-sim needs no configuration file');

    const app = calibration.containers.find((container) => container.name === 'calibration');
    const appEnv = new Map((app?.env ?? []).map((variable) => [variable.name, variable]));
    const outboxUrl = calibration.sidecarEnv.find((variable) => variable.name === 'OUTRIGGER_OUTBOX_URL');
    t.match(
      outboxUrl?.valueFrom?.secretKeyRef,
      { name: 'sandbox-postgres', key: 'url' },
      'outrigger.dev/outbox-url-secret names the sandbox database',
    );
    t.same(
      outboxUrl?.valueFrom?.secretKeyRef,
      { ...appEnv.get('DATABASE_URL')?.valueFrom?.secretKeyRef, optional: false },
      "the relay's database is the one the app commits to, from the same Secret key",
    );
    t.match(
      calibration.config.outbox?.url,
      /^postgres:\/\/outrigger:[^@]+@sandbox-toxiproxy:5432\/sandbox$/,
      'the relay reaches PostgreSQL through Toxiproxy',
    );
    t.equal(
      calibration.config.outbox?.table,
      appEnv.get('OUTBOX_TABLE')?.value,
      'the relay reads the table the app writes',
    );
    t.equal(
      app?.env?.some((variable) => variable.name === 'OUTRIGGER_OUTBOX_URL'),
      false,
      'the app has no relay URL',
    );
    // What main.sh reads: every variable set is one of them, and the two without a default for the sandbox are set.
    const script = read('services/calibration/main.sh');
    const reads = new Set([...script.matchAll(/\$\{([A-Z_]+):-/g)].map((match) => match[1]));
    for (const variable of appEnv.keys()) t.ok(reads.has(variable), `main.sh reads ${variable}`);
    for (const variable of ['DATABASE_URL', 'OUTBOX_TABLE']) t.ok(appEnv.has(variable), `the pod sets ${variable}`);
    t.equal(appEnv.get('ROLLBACK_EVERY')?.value, '5', 'ROLLBACK_EVERY from demo.calibration.rollbackEvery');
    t.equal(appEnv.get('CALIBRATION_INTERVAL_SECONDS')?.value, '3', 'from demo.calibration.intervalSeconds');

    // Calibrations are of the sensor the readings are of (ingestion applies them by sensor), and each
    // sensor-sim replica has reading ids of its own (a shared prefix would make one replica's readings
    // duplicates of another's idempotency keys).
    const simulator = sensorSim.containers.find((container) => container.name === 'sensor-sim');
    const simEnv = new Map((simulator?.env ?? []).map((variable) => [variable.name, variable]));
    t.equal(simEnv.get('SENSOR_ID')?.value, 'sensor-1', 'sensor-sim: SENSOR_ID from demo.sensorId');
    t.equal(appEnv.get('SENSOR_ID')?.value, simEnv.get('SENSOR_ID')?.value, 'calibration calibrates that sensor');
    t.same(
      simEnv.get('READING_ID_PREFIX')?.valueFrom,
      { fieldRef: { fieldPath: 'metadata.name' } },
      'reading ids start with the pod name',
    );
    const simulatorScript = read('services/sensor-sim/main.py');
    const simReads = new Set([...simulatorScript.matchAll(/os\.environ\.get\("([A-Z_]+)"/g)].map((match) => match[1]));
    for (const variable of simEnv.keys()) t.ok(simReads.has(variable), `main.py reads ${variable}`);

    // What calibration publishes, ingestion subscribes to: otherwise the relay parks every row as unroutable.
    const topic = /VALUES \(:'id', '([a-z.]+)'/.exec(script)?.[1];
    t.equal(topic, 'sensor.calibrations', "main.sh's topic");
    t.same(
      ingestion.config.subscriptions.map((subscription) => [subscription.name, subscription.topic]),
      [
        ['readings', 'sensor.readings'],
        ['calibrations', topic],
      ],
      "ingestion's sidecar subscribes to the readings and the calibrations",
    );

    // The weather API: a third party, so the injector lets its pods through untouched.
    const weatherApi = review('sandbox-weather-api');
    t.equal(weatherApi.decision.result, 'skipped', `the weather API gets no sidecar (${weatherApi.decision.reason})`);
    t.equal(weatherApi.decision.response.patch, undefined, 'its pod is not patched');
    const weatherContainer = weatherApi.template.spec.containers[0] as DemoContainer & {
      ports: { name: string; containerPort: number }[];
    };
    const weatherEnv = new Map((weatherContainer.env ?? []).map((variable) => [variable.name, variable.value]));
    const weatherScript = read('services/weather-api/main.py');
    const weatherReads = new Set(
      [...weatherScript.matchAll(/os\.environ\.get\("([A-Z_]+)"/g)].map((match) => match[1]),
    );
    for (const variable of weatherEnv.keys())
      t.ok(weatherReads.has(variable), `weather-api's main.py reads ${variable}`);
    t.equal(weatherEnv.get('FAIL_EVERY'), '4', 'FAIL_EVERY from demo.weatherApi.failEvery');
    const weatherPort = Number(weatherEnv.get('WEATHER_PORT'));
    t.same(weatherContainer.ports, [{ name: 'http', containerPort: weatherPort }], 'it listens where its port says');

    // Ingestion's sidecar reaches it through Toxiproxy's "weather" proxy, never directly: the target's host is
    // Toxiproxy's Service, its port one the Service sends to the container port the proxy listens on.
    t.same(
      ingestion.config.targets.map((target) => target.name),
      ['weather'],
      "ingestion's sidecar has the weather target",
    );
    const target = new URL(ingestion.config.targets[0]?.baseUrl ?? '');
    const weatherProxy = sandboxProxies(objects).find((proxy) => proxy.name === 'weather');
    t.equal(target.protocol, 'http:');
    t.equal(target.hostname, 'sandbox-toxiproxy', "the target's host is Toxiproxy's Service");
    const toxiproxyPort = portsOf(find(objects, 'Service', 'sandbox-toxiproxy')).find(
      (port) => port.port === Number(target.port),
    );
    const toxiproxyContainer = podTemplate(find(objects, 'Deployment', 'sandbox-toxiproxy'))?.spec.containers[0] as {
      ports: { name: string; containerPort: number }[];
    };
    const containerPort = toxiproxyContainer.ports.find((port) => port.name === toxiproxyPort?.targetPort);
    t.equal(
      `0.0.0.0:${containerPort?.containerPort}`,
      weatherProxy?.listen,
      `port ${target.port} of the Service reaches the weather proxy's listen port`,
    );
    const upstream = weatherProxy?.upstream.split(':') ?? [];
    const weatherService = find(objects, 'Service', upstream[0] ?? '');
    const servicePort = portsOf(weatherService).find((port) => port.port === Number(upstream[1]));
    t.equal(servicePort?.targetPort, 'http', "the proxy's upstream is the weather API Service's port");
    t.match(weatherApi.template.metadata.labels, weatherService.spec?.selector, 'which selects the weather API pods');
    // And with the policies `make demo` gives it (services/ingestion/outrigger.yaml), but the base URL.
    const policies = (config: unknown) => {
      const { baseUrl, ...rest } =
        (config as { targets?: { name: string; baseUrl: string }[] }).targets?.find(
          (entry) => entry.name === 'weather',
        ) ?? {};
      t.ok(baseUrl, 'a weather target');
      return rest;
    };
    t.same(
      policies(ingestionConfig(objects)),
      policies(yamlFile('services/ingestion/outrigger.yaml')),
      "the weather target's timeout, retries and circuit breaker are make demo's",
    );
  },
);

t.test('demo.calibration.enabled=false: no calibration, and ingestion subscribes to readings only', async (t) => {
  const helm = await createHelm(t);
  const objects = (await helm.template(SANDBOX, 'sandbox', NAMESPACE, {
    demo: { calibration: { enabled: false } },
  })) as Obj[];
  t.same(
    objects.filter((object) => /calibration/.test(object.metadata?.name ?? '')),
    [],
    'no calibration objects',
  );
  for (const name of ['sandbox-ingestion', 'sandbox-sensor-sim']) t.ok(find(objects, 'Deployment', name), name);
  const config = ingestionConfig(objects);
  t.same(
    config.subscriptions.map((subscription: { name: string }) => subscription.name),
    ['readings'],
    'ingestion subscribes to the readings only',
  );
});

t.test(
  'demo.weatherApi.enabled=false: no weather API, no proxy for it, and ingestion has no weather target',
  async (t) => {
    const helm = await createHelm(t);
    const objects = (await helm.template(SANDBOX, 'sandbox', NAMESPACE, {
      demo: { weatherApi: { enabled: false } },
    })) as Obj[];
    t.same(
      objects.filter((object) => /weather/.test(object.metadata?.name ?? '')),
      [],
      'no weather API objects',
    );
    for (const name of DEMO_DEPLOYMENTS) t.ok(find(objects, 'Deployment', name), name);
    const proxies = sandboxProxies(objects);
    t.same(
      proxies.map((proxy) => proxy.name),
      ['rabbitmq', 'postgres'],
      'Toxiproxy proxies the broker and the database only',
    );
    t.same(
      portsOf(find(objects, 'Service', 'sandbox-toxiproxy')).map((port) => port.port),
      [5672, 5432],
      'and its Service exposes no weather port',
    );
    t.notMatch(
      JSON.stringify(podTemplate(find(objects, 'Deployment', 'sandbox-toxiproxy'))?.spec.containers[0]?.ports),
      /weather/,
      'nor its container',
    );
    const config = ingestionConfig(objects);
    t.equal(config.targets, undefined, "ingestion's sidecar has no outbound target");
    t.ok(
      read('services/ingestion/src/main.ts').includes('process.env.WEATHER_TARGET'),
      'ingestion reads WEATHER_TARGET',
    );
    t.equal(weatherTargetOf(objects), '', 'and the app calls none (else a 404 TARGET_UNKNOWN a reading)');
    t.equal(weatherTargetOf(await helm.template(SANDBOX, 'sandbox', NAMESPACE)), 'weather', 'by default it calls it');
  },
);

/** The WEATHER_TARGET ingestion's app container is given. */
function weatherTargetOf(objects: Obj[]): string | undefined {
  const app = podTemplate(find(objects, 'Deployment', 'sandbox-ingestion'))?.spec.containers.find(
    (container) => container.name === 'ingestion',
  ) as { env?: { name: string; value?: string }[] } | undefined;
  return app?.env?.find((variable) => variable.name === 'WEATHER_TARGET')?.value;
}

/** Every metric name a PromQL expression reads (functions, keywords, labels and strings removed). */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  // Identifiers not followed by "(" (those are functions).
  const names = [...bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)].flatMap((match) =>
    match[2] === undefined ? [match[1] as string] : [],
  );
  return names.filter((name) => !/^(and|or|unless|offset|bool)$/.test(name));
}

/** The labels an expression groups by: `by (a, b)`. */
const groupings = (expr: string) =>
  [...expr.matchAll(/\bby\s*\(([^)]*)\)/g)].flatMap((match) =>
    (match[1] ?? '').split(',').map((label) => label.trim()),
  );

/** Series names and label names of a scraped page (histograms as their _bucket, _sum, _count series). */
function seriesOf(families: ParsedFamily[]) {
  const series = new Map<string, Set<string>>();
  for (const family of families) {
    const labels = new Set(family.metrics.flatMap((metric) => Object.keys(metric.labels)));
    const names =
      family.type === 'histogram' ? ['_bucket', '_sum', '_count'].map((s) => family.name + s) : [family.name];
    for (const name of names) series.set(name, name.endsWith('_bucket') ? new Set([...labels, 'le']) : labels);
  }
  return series;
}

t.test("the dashboard's queries name only series a real sidecar exports, grouped by labels it has", async (t) => {
  const dashboard = JSON.parse(read('charts/sandbox/dashboards/outrigger.json')) as {
    uid: string;
    panels: { title: string; type: string; targets?: { expr: string }[] }[];
    templating: { list: { query: { query: string } }[] };
  };
  t.equal(dashboard.uid, 'outrigger');
  const queries = [
    ...dashboard.panels.flatMap((panel) =>
      (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })),
    ),
    ...dashboard.templating.list.map((variable) => ({ panel: 'variables', expr: variable.query.query })),
  ];
  t.ok(queries.length >= 20, `${queries.length} queries`);

  // A sidecar that has published, pushed a delivery, made outbound calls and relayed an outbox row, so its
  // labelled series exist. The table is registered before the sidecar starts: its relay stops before the table goes.
  const topic = uniqueTopic('dashboard');
  const appId = `dashboard-${process.pid}`;
  deleteQueuesAtEnd(t, `${appId}:${topic}`);
  const db = await database(t);
  const table = uniqueTable(t, db);
  const app = await startApp(t);
  const upstream = await startUpstream(t);
  const failing = await startUpstream(t, reply(503));
  const sidecar = await startSidecar(t, {
    appId,
    broker: { url: BROKER_URL },
    app: { port: app.port },
    subscriptions: [{ name: 'readings', topic, route: '/readings' }],
    targets: [
      { name: 'upstream', baseUrl: `http://127.0.0.1:${upstream.port}` },
      // One failure opens its circuit; the next call is refused unsent (outrigger_outbound_rejected_total).
      {
        name: 'failing',
        baseUrl: `http://127.0.0.1:${failing.port}`,
        retry: { maxAttempts: 1 },
        circuitBreaker: { consecutiveFailures: 1, halfOpenAfter: '1m' },
      },
    ],
    outbox: { url: DATABASE_URL, table, pollInterval: '200ms' },
  });
  // Ready includes the outbox: its relay is connected and has created the table.
  await until('the sidecar to be ready', async () => (await fetch(`${sidecar.ops}/readyz`)).ok, { timeoutMs: 20_000 });
  const published = await fetch(`${sidecar.api}/v1/publish/${topic}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"celsius": 21}',
  });
  t.equal(published.status, 202);
  await until('the push to reach the app', () => app.received.length > 0, { timeoutMs: 20_000 });
  t.equal((await fetch(`${sidecar.api}/v1/outbound/upstream/ping`)).status, 200);
  t.equal((await fetch(`${sidecar.api}/v1/outbound/failing/ping`)).status, 503);
  const refused = await fetch(`${sidecar.api}/v1/outbound/failing/ping`);
  t.match(await refused.json(), { code: 'CIRCUIT_OPEN' });
  // A row the app commits, which the relay publishes to the subscribed topic, back to the app.
  await insertRows(db, table, [{ topic, payload: '{"celsius": 22}' }]);
  const page = await until(
    'the relay to count its row',
    async () => {
      const text = await (await fetch(`${sidecar.ops}/metrics`)).text();
      return /^outrigger_outbox_messages_total\{outcome="published"\} 1$/m.test(text) ? text : undefined;
    },
    { timeoutMs: 20_000 },
  );
  t.match(page, /^outrigger_outbox_connected 1$/m, "the relay is connected: the outbox's gauges are its own, not 0s");
  const series = seriesOf(await parseExposition(page));
  // Families without samples yet (Prometheus's parser leaves them out) are still declared on the page;
  // their labels are unknown, unlike those of a series sampled without labels (a gauge such as the outbox's).
  const declaredOnly = new Set<string>();
  for (const [, name, type] of page.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const names = type === 'histogram' ? ['_bucket', '_sum', '_count'].map((s) => `${name}${s}`) : [name as string];
    for (const declared of names) {
      if (series.has(declared)) continue;
      series.set(declared, new Set());
      declaredOnly.add(declared);
    }
  }
  await sidecar.stop();

  // Labels Prometheus adds to every sidecar target (charts/sandbox templates/prometheus.yaml).
  const targetLabels = new Set(['namespace', 'pod', 'app_id', 'job', 'instance']);
  // RabbitMQ's own series (rabbitmq_prometheus, /metrics/per-object), scraped by the sandbox's Prometheus.
  const rabbitmq = new Map([
    ['rabbitmq_queue_messages_ready', new Set(['vhost', 'queue'])],
    ['rabbitmq_queue_messages_unacked', new Set(['vhost', 'queue'])],
  ]);
  for (const { panel, expr } of queries) {
    const names = metricNames(expr.replace(/^label_values\((.*),\s*\w+\)$/, '$1'));
    t.ok(names.length > 0, `${panel}: ${expr} reads a metric`);
    for (const name of names) {
      const labels = series.get(name) ?? rabbitmq.get(name);
      t.ok(labels, `${panel}: ${name} is exported`);
      if (!labels || declaredOnly.has(name)) continue;
      for (const label of groupings(expr)) {
        t.ok(labels.has(label) || targetLabels.has(label), `${panel}: ${name} has the label "${label}"`);
      }
    }
  }
  for (const labelled of [
    'outrigger_publishes_total',
    'outrigger_deliveries_total',
    'outrigger_outbound_requests_total',
    'outrigger_outbound_in_flight',
    'outrigger_outbound_queued',
    'outrigger_outbox_messages_total',
  ]) {
    t.ok(series.get(labelled)?.size, `${labelled} had samples, so its groupings were checked`);
  }
});

/** Objects of a multi-document YAML file. */
const objectsIn = (path: string) => parseObjects(readFileSync(path, 'utf8')) as Obj[];

t.test(
  'both charts install into a real API server in skaffold order; other values pass a server-side dry run',
  async (t) => {
    const kube = await startControlPlane(t);
    const helm = await createHelm(t, { kubeconfigPath: kube.kubeconfigPath });
    const client = KubernetesObjectApi.makeApiClient(kube.kubeConfig);
    for (const namespace of objectsIn(join(ROOT, 'k8s/namespaces.yaml'))) await client.create(namespace);
    await kube.createNamespace('shop');

    const skaffold = yamlFile('skaffold.yaml') as unknown as Skaffold;
    for (const release of skaffold.deploy.helm.releases) {
      const args = ['install', release.name, join(ROOT, release.chartPath), '--namespace', release.namespace];
      if (release.createNamespace) args.push('--create-namespace');
      for (const file of release.valuesFiles ?? []) args.push('-f', join(ROOT, file));
      // No scheduler here: pods stay Pending, so no --wait.
      await helm.ok(args, { timeoutMs: 120_000 });
      const manifest = parseObjects(await helm.ok(['get', 'manifest', release.name, '-n', release.namespace])) as Obj[];
      t.ok(manifest.length > 0, `${release.name}: ${manifest.length} objects installed`);
      for (const object of manifest) {
        const stored = await client.read({
          apiVersion: object.apiVersion,
          kind: object.kind,
          metadata: { name: object.metadata?.name ?? '', namespace: object.metadata?.namespace ?? release.namespace },
        });
        t.equal(
          stored.metadata?.name,
          object.metadata?.name,
          `${release.name}: ${object.kind} ${object.metadata?.name} stored`,
        );
      }
    }

    for (const object of (await helm.template(SANDBOX, 'lab', NAMESPACE, OTHER_VALUES)) as Obj[]) {
      object.metadata = { ...object.metadata, namespace: object.metadata?.namespace ?? NAMESPACE };
      const outcome = await client.create(object, undefined, 'All').then(
        () => 'accepted',
        (error: unknown) => (error instanceof ApiException ? `${error.code}: ${error.body}` : String(error)),
      );
      t.equal(outcome, 'accepted', `dry run: ${object.kind} ${object.metadata.name}`);
    }
  },
);

interface Skaffold {
  apiVersion: string;
  build: { artifacts: { image: string; context: string; docker: { dockerfile: string } }[] };
  deploy: {
    kubeContext: string;
    helm: {
      hooks: { before: { host: { command: string[] } }[] };
      releases: {
        name: string;
        chartPath: string;
        namespace: string;
        createNamespace?: boolean;
        valuesFiles?: string[];
        setValueTemplates?: Record<string, string>;
      }[];
    };
  };
  portForward: { resourceType: string; resourceName: string; namespace: string; port: number; localPort: number }[];
}

/** The value at a dotted path of a chart's values.yaml (undefined when the path is not there). */
const valueAt = (values: unknown, path: string) =>
  path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], values);

t.test('skaffold.yaml, kind-config.yaml and k8s/ agree with the charts and the files they name', async (t) => {
  const skaffold = yamlFile('skaffold.yaml') as unknown as Skaffold;
  t.match(skaffold.apiVersion, /^skaffold\/v4beta\d+$/);
  const images = new Map<string, string>();
  for (const artifact of skaffold.build.artifacts) {
    t.ok(
      existsSync(join(ROOT, artifact.context, artifact.docker.dockerfile)),
      `${artifact.image}: its Dockerfile exists`,
    );
    images.set(artifact.image.replace(/[^a-zA-Z0-9]/g, '_'), artifact.image);
  }
  t.same([...images.values()].sort(), [
    'ghcr.io/outrigger/demo-calibration',
    'ghcr.io/outrigger/demo-ingestion',
    'ghcr.io/outrigger/demo-sensor-sim',
    'ghcr.io/outrigger/demo-weather-api',
    'ghcr.io/outrigger/outrigger',
  ]);
  const releases = skaffold.deploy.helm.releases;
  t.same(
    releases.map((release) => release.chartPath),
    ['charts/outrigger', 'charts/sandbox'],
    'the platform first, then the sandbox',
  );
  const used = new Set<string>();
  for (const release of releases) {
    const chartValues = yamlFile(join(release.chartPath, 'values.yaml'));
    for (const file of release.valuesFiles ?? []) t.ok(existsSync(join(ROOT, file)), `${file} exists`);
    for (const [key, template] of Object.entries(release.setValueTemplates ?? {})) {
      t.not(valueAt(chartValues, key), undefined, `${release.chartPath} has the value ${key}`);
      const reference = /^\{\{\.IMAGE_(REPO|TAG)_(\w+)\}\}$/.exec(template);
      t.ok(reference && images.has(reference[2] ?? ''), `${key}: ${template} names a built artifact`);
      used.add(images.get(reference?.[2] ?? '') ?? '');
    }
  }
  t.equal(used.size, images.size, 'every image built is deployed');

  const sandbox = releases.find((release) => release.chartPath === 'charts/sandbox');
  if (!sandbox) throw new Error('no sandbox release');
  const helm = await createHelm(t);
  const rendered = (await helm.template(SANDBOX, sandbox.name, sandbox.namespace, {
    ...parseYaml(read('k8s/sandbox-values.yaml')),
  })) as Obj[];
  for (const forward of skaffold.portForward) {
    t.equal(forward.namespace, sandbox.namespace);
    const service = find(rendered, 'Service', forward.resourceName);
    const ports = portsOf(service).map((port) => port.port);
    t.ok(ports.includes(forward.port), `${forward.resourceName} serves ${forward.port}`);
  }
  t.same(
    objectsIn(join(ROOT, 'k8s/namespaces.yaml')).map((object) => object.metadata?.name),
    [sandbox.namespace],
    'k8s/namespaces.yaml creates the sandbox namespace the skaffold hook applies',
  );
  t.match(skaffold.deploy.helm.hooks.before[0]?.host.command.join(' '), /apply -f k8s\/namespaces\.yaml/);

  // What the platform chart is given must point at what the sandbox creates.
  const platform = yamlFile('k8s/outrigger-values.yaml') as {
    sidecar: {
      brokerUrlSecret: { name: string; key: string };
      env: { name: string; value: string }[];
      rbac: { namespaces: { namespace: string; serviceAccounts: string[] }[] };
    };
  };
  const sandboxDefaults = yamlFile('charts/sandbox/values.yaml') as { brokerSecret: { name: string; key: string } };
  t.same(platform.sidecar.brokerUrlSecret, sandboxDefaults.brokerSecret, 'the broker Secret the sidecars read');
  const endpoint = platform.sidecar.env.find((env) => env.name === 'OTEL_EXPORTER_OTLP_ENDPOINT')?.value ?? '';
  const collector = find(rendered, 'Service', `${sandbox.name}-otel-collector`);
  t.equal(endpoint, `http://${collector.metadata?.name}.${sandbox.namespace}:4318`, 'spans go to the collector');
  t.same(platform.sidecar.rbac.namespaces, [{ namespace: sandbox.namespace, serviceAccounts: ['default'] }]);
  const helmOutrigger = await helm.run([
    'template',
    'outrigger',
    OUTRIGGER,
    '-f',
    join(ROOT, 'k8s/outrigger-values.yaml'),
  ]);
  t.equal(helmOutrigger.code, 0, `charts/outrigger accepts k8s/outrigger-values.yaml ${helmOutrigger.stderr}`);

  // kind: the cluster skaffold and make dev name, its NodePorts on loopback only.
  const kind = yamlFile('kind-config.yaml') as {
    name: string;
    nodes: {
      image?: string;
      extraPortMappings: { containerPort: number; hostPort: number; listenAddress: string }[];
    }[];
  };
  // The node image's Kubernetes must satisfy charts/outrigger's kubeVersion (">=1.32.0-0": selectableFields).
  const minimum = /kubeVersion: ">=1\.(\d+)/.exec(read('charts/outrigger/Chart.yaml'))?.[1];
  for (const node of kind.nodes) {
    const minor = /^kindest\/node:v1\.(\d+)\./.exec(node.image ?? '')?.[1];
    t.ok(
      minor !== undefined && Number(minor) >= Number(minimum),
      `kind's node image ${node.image} is Kubernetes 1.${minimum}+`,
    );
  }
  t.equal(skaffold.deploy.kubeContext, `kind-${kind.name}`);
  t.match(
    read('Makefile'),
    new RegExp(`--config kind-config.yaml[\\s\\S]*skaffold dev --kube-context kind-${kind.name}`),
  );
  const mappings = kind.nodes.flatMap((node) => node.extraPortMappings);
  for (const mapping of mappings) t.equal(mapping.listenAddress, '127.0.0.1', `${mapping.hostPort} on loopback only`);
  const nodePorts = rendered.flatMap((object) =>
    object.kind === 'Service' && object.spec?.type === 'NodePort'
      ? portsOf(object).flatMap((port) => (port.nodePort ? [port.nodePort] : []))
      : [],
  );
  t.same(nodePorts.sort(), mappings.map((mapping) => mapping.containerPort).sort(), 'every NodePort is mapped');
});

/** The instructions of each stage of a Dockerfile (continuation lines joined). */
function stages(path: string) {
  const lines = read(path)
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const args = new Map(
    lines.flatMap((line) => {
      const arg = /^ARG (\w+)=(\S+)$/.exec(line);
      return arg ? [[arg[1] as string, arg[2] as string]] : [];
    }),
  );
  const result: { base: string; name?: string; lines: string[] }[] = [];
  for (const line of lines) {
    const from = /^FROM (\S+)(?: AS (\S+))?$/i.exec(line);
    if (from)
      result.push({
        base: (from[1] ?? '').replace(/\$\{(\w+)\}/g, (_, name) => args.get(name) ?? ''),
        name: from[2],
        lines: [],
      });
    else result.at(-1)?.lines.push(line);
  }
  return result;
}

t.test('Dockerfiles: pinned bases, multi-stage or psql, production dependencies only, user 65532', async (t) => {
  for (const [path, base] of [
    ['Dockerfile', /^node:24\.\d+\.\d+-[a-z]+-slim$/],
    ['services/ingestion/Dockerfile', /^node:24\.\d+\.\d+-[a-z]+-slim$/],
    ['services/sensor-sim/Dockerfile', /^python:3\.\d+\.\d+-slim-[a-z]+$/],
    ['services/weather-api/Dockerfile', /^python:3\.\d+\.\d+-slim-[a-z]+$/],
  ] as const) {
    const all = stages(path);
    t.ok(all.length >= 2, `${path} is multi-stage`);
    for (const stage of all) t.match(stage.base, base, `${path}: ${stage.name} FROM ${stage.base} is pinned`);
    const final = all.at(-1);
    t.ok(final?.lines.includes('USER 65532:65532'), `${path}: the final stage runs as 65532`);
    t.match(
      final?.lines.find((line) => line.startsWith('ENTRYPOINT')),
      /^ENTRYPOINT \[/,
      `${path}: exec form, no shell`,
    );
  }
  // The weather API's image listens on every interface (the chart sets only WEATHER_PORT), on the chart's port.
  const weatherApi = stages('services/weather-api/Dockerfile').at(-1)?.lines ?? [];
  t.ok(
    weatherApi.some((line) => /^ENV .*\bWEATHER_HOST=0\.0\.0\.0\b/.test(line)),
    'services/weather-api/Dockerfile: WEATHER_HOST=0.0.0.0',
  );
  t.ok(weatherApi.includes('EXPOSE 8090'), "services/weather-api/Dockerfile: the chart's port 8090");
  const sidecar = stages('Dockerfile');
  const final = sidecar.at(-1)?.lines ?? [];
  t.ok(
    sidecar.some((stage) => stage.lines.some((line) => /npm install --omit=dev .*&& cmp package-lock.json/.test(line))),
    'production dependencies only, exactly as locked',
  );
  t.same(
    final.filter((line) => /^COPY --from=/.test(line)).map((line) => line.split(' ')[1]),
    ['--from=deps', '--from=build'],
  );
  // The image runs node itself, not the launcher (which needs bash and looks for .tools), and an
  // exec-form ENTRYPOINT cannot read flags from a file the two share: so the two lists must agree.
  const launcher = /^exec "\$node" (.+) "\$entry" "\$@"$/m.exec(read('sidecar/bin/outrigger'));
  const flags = launcher?.[1]?.split(' ') ?? [];
  t.ok(
    flags.length > 0 && flags.every((flag) => /^--[a-z-]+(=[\w.]+)?$/.test(flag)),
    `sidecar/bin/outrigger passes node plain flags: ${flags.join(' ')}`,
  );
  const entrypoint = final.find((line) => line.startsWith('ENTRYPOINT '))?.slice('ENTRYPOINT '.length);
  t.same(
    JSON.parse(entrypoint ?? 'null'),
    ['node', ...flags, '/app/sidecar/dist/cli/main.js'],
    "the image's node gets the launcher's flags",
  );
  t.ok(final.includes('CMD ["sidecar"]'));

  // calibration: one stage on the postgres image, for its bash and psql; the sandbox's own, so psql matches the server.
  const calibration = stages('services/calibration/Dockerfile');
  const postgres = (yamlFile('charts/sandbox/values.yaml') as { postgres: { image: string } }).postgres.image;
  t.same(
    calibration.map((stage) => stage.base),
    [postgres],
    "services/calibration/Dockerfile: FROM the sandbox's PostgreSQL image",
  );
  const calibrationLines = calibration.at(-1)?.lines ?? [];
  t.ok(calibrationLines.includes('USER 65532:65532'), 'services/calibration/Dockerfile runs as 65532');
  t.ok(calibrationLines.includes('ENTRYPOINT ["bash", "/app/main.sh"]'), 'services/calibration/Dockerfile: exec form');

  // .dockerignore: everything out, then back in only what the Dockerfile copies.
  const ignore = read('.dockerignore')
    .split('\n')
    .filter((line) => line && !line.startsWith('#'));
  t.equal(ignore[0], '*', 'everything is excluded first');
  const included = ignore.filter((line) => line.startsWith('!')).map((line) => line.slice(1));
  for (const path of included) t.notMatch(path, /node_modules|\.tools|\.git|dist/, `${path} is safe to send`);
  const copied = sidecar
    .flatMap((stage) => stage.lines)
    .filter((line) => line.startsWith('COPY ') && !line.includes('--from'))
    .flatMap((line) => line.split(/\s+/).slice(1, -1));
  for (const path of copied) t.ok(included.includes(path.replace(/\/$/, '')), `${path} (copied) is in the context`);
});

type ToxiproxyProxy = {
  name: string;
  listen: string;
  enabled: boolean;
  toxics: { name: string; type: string; stream: string; attributes: Record<string, number> }[];
};

/**
 * A real Toxiproxy loaded with these proxies, each listening on a loopback port of its own, and the chaos scripts
 * aimed at it (through a local toxiproxy-cli, as lib.sh allows).
 */
async function sandboxToxiproxy(t: Test, proxies: { name: string; listen: string; upstream: string }[]) {
  const dir = await mkdtemp(join(tmpdir(), 'outrigger-chaos-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    join(dir, 'proxies.json'),
    JSON.stringify(proxies.map((proxy) => ({ ...proxy, listen: '127.0.0.1:0' }))),
  );
  const port = await freePort();
  const server: ChildProcess = spawn(
    TOXIPROXY_SERVER,
    ['-host', '127.0.0.1', '-port', String(port), '-config', join(dir, 'proxies.json')],
    { stdio: 'ignore' },
  );
  t.teardown(async () => {
    if (server.exitCode !== null) return;
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGKILL');
    await exited;
  });
  const api = `http://127.0.0.1:${port}`;
  const state = async () => {
    const all = (await (await fetch(`${api}/proxies`)).json()) as Record<string, ToxiproxyProxy>;
    return Object.fromEntries(Object.values(all).map((proxy) => [proxy.name, proxy]));
  };
  await until(
    'toxiproxy-server with the proxies',
    async () => Object.keys(await state().catch(() => ({}))).length === proxies.length,
    { timeoutMs: 10_000 },
  );
  const chaos = (script: string, ...args: string[]) =>
    run(join(ROOT, 'scripts/chaos', script), args, {
      timeout: 20_000,
      env: { ...process.env, TOXIPROXY_CLI: join(ROOT, '.tools/bin/toxiproxy-cli'), TOXIPROXY_URL: api },
    });
  return { state, chaos };
}

t.test("the chaos scripts drive a real Toxiproxy loaded with the sandbox's proxies", async (t) => {
  const helm = await createHelm(t);
  const objects = (await helm.template(SANDBOX, 'sandbox', NAMESPACE)) as Obj[];
  const proxies = sandboxProxies(objects);
  t.same(
    proxies.map((proxy) => proxy.name),
    ['rabbitmq', 'postgres', 'weather'],
  );
  const { state, chaos } = await sandboxToxiproxy(t, proxies);

  await chaos('broker-latency.sh', '500', '100');
  await chaos('broker-latency.sh', '300'); // again: replaces, never fails
  await chaos('postgres-latency.sh', '200');
  await chaos('cut-broker.sh');
  await chaos('cut-broker.sh'); // idempotent: still cut
  await chaos('weather-latency.sh', '800', '100');
  await chaos('weather-latency.sh', '1000'); // again: replaces
  await chaos('cut-weather.sh');
  await chaos('cut-weather.sh'); // idempotent: still cut
  // t.same on the toxics: t.match would take an array as a prefix (and [] as anything).
  const toxics = (proxy?: ToxiproxyProxy) =>
    proxy?.toxics.map(({ name, type, stream, attributes }) => ({ name, type, stream, attributes }));
  const latency = (ms: number) => ({
    name: 'latency',
    type: 'latency',
    stream: 'downstream',
    attributes: { latency: ms, jitter: 0 },
  });
  let now = await state();
  t.equal(now.rabbitmq?.enabled, false, 'the broker is cut');
  t.same(toxics(now.rabbitmq), [latency(300)], 'one latency toxic on the broker: the second replaced the first');
  t.equal(now.postgres?.enabled, true);
  t.same(toxics(now.postgres), [latency(200)]);
  t.equal(now.weather?.enabled, false, 'the weather API is cut');
  t.same(toxics(now.weather), [latency(1000)], 'one latency toxic on the weather API');
  await t.rejects(chaos('broker-latency.sh', 'soon'), 'a latency that is not a number is refused');
  await t.rejects(chaos('weather-latency.sh'), 'weather-latency.sh without a latency is refused');

  await chaos('reset.sh');
  now = await state();
  t.equal(now.rabbitmq?.enabled, true, 'reset reconnects the broker');
  t.same(now.rabbitmq?.toxics, [], 'reset removes the broker toxics');
  t.equal(now.postgres?.enabled, true);
  t.same(now.postgres?.toxics, [], 'reset removes the postgres toxics');
  t.equal(now.weather?.enabled, true, 'reset reconnects the weather API');
  t.same(now.weather?.toxics, [], 'reset removes the weather toxics');
});

t.test(
  "ingestion's weather target, as the chart sets it, through the weather proxy: the chaos scripts open its circuit, reset.sh lets it close",
  async (t) => {
    const helm = await createHelm(t);
    const objects = (await helm.template(SANDBOX, 'sandbox', NAMESPACE)) as Obj[];
    // The weather API's stand-in: every answer a 200 (its every-4th 503 would make the half-open trial a gamble).
    const weatherApi = await startUpstream(t, (request, response) => {
      request.resume();
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"sensor": "sensor-1", "ambientC": 19.4}');
    });
    const proxy = sandboxProxies(objects).find((entry) => entry.name === 'weather');
    if (!proxy) throw new Error('no weather proxy');
    const { state, chaos } = await sandboxToxiproxy(t, [{ ...proxy, upstream: `127.0.0.1:${weatherApi.port}` }]);
    const listen = (await state()).weather?.listen;
    const config = ingestionConfig(objects);
    const { call, ops } = await sidecarWith(t, [{ ...config.targets[0], baseUrl: `http://${listen}` }]);
    // A call as ingestion makes it: the whole call within 2 s.
    const conditions = async () => {
      const started = performance.now();
      const answer = await call('/v1/outbound/weather/v1/conditions/sensor-1', {
        headers: { 'outrigger-timeout': '2s' },
      });
      const code = answer.headers['content-type']?.toString().startsWith('application/problem+json')
        ? answer.json().code
        : undefined;
      return { ...answer, code, attempts: answer.headers['outrigger-attempts'], ms: performance.now() - started };
    };
    const circuitGauge = async () =>
      /^outrigger_outbound_circuit_state\{target="weather"\} (\d)$/m.exec(
        await (await fetch(`${ops}/metrics`)).text(),
      )?.[1];
    /** Calls until one gets a 200: the half-open trial, once the circuit has been open halfOpenAfter (5 s). */
    const closes = async (what: string) => {
      const started = performance.now();
      const refused = new Set<string>();
      await until(
        what,
        async () => {
          const answer = await conditions();
          if (answer.status !== 200) refused.add(`${answer.status} ${answer.code}`);
          return answer.status === 200;
        },
        { timeoutMs: 15_000, intervalMs: 250 },
      );
      t.same([...refused], ['503 CIRCUIT_OPEN'], `${what}: refused at once meanwhile`);
      t.ok(performance.now() - started < 7_000, `${what}: within the 5 s before the trial`);
      t.equal(await circuitOf(call, 'weather'), 'closed', `${what}: closed`);
      t.equal(await circuitGauge(), '0', `${what}: outrigger_outbound_circuit_state 0`);
    };

    t.match(await conditions(), { status: 200, attempts: '1' }, 'through the proxy, the weather API answers');

    // Well over the per-attempt timeout: each call's one attempt times out (timeouts are not retried), its
    // answer cut off long before the weather API's could come.
    const latency = 3_000;
    await chaos('weather-latency.sh', String(latency));
    for (let failed = 1; failed <= 5; failed += 1) {
      const answer = await conditions();
      t.match(answer, { status: 504, code: 'UPSTREAM_TIMEOUT', attempts: '1' }, `call ${failed}: timed out, once`);
      t.ok(answer.ms < latency - 500, `call ${failed}: cut off by the timeout (${Math.round(answer.ms)} ms)`);
    }
    t.equal(await circuitOf(call, 'weather'), 'open', 'five timed-out attempts in a row open the circuit');
    t.equal(await circuitGauge(), '2', 'outrigger_outbound_circuit_state 2 (open)');
    const refused = await conditions();
    t.match(refused, { status: 503, code: 'CIRCUIT_OPEN' }, 'then calls are refused');
    t.ok(refused.headers['retry-after'], 'with a retry-after');
    t.ok(refused.ms < 200, `at once (${Math.round(refused.ms)} ms)`);
    await chaos('reset.sh');
    await closes('after reset.sh, the half-open trial');

    // Cut: refused connections, retried, until the circuit opens.
    await chaos('cut-weather.sh');
    const first = await conditions();
    t.match(first, { status: 502, code: 'UPSTREAM_UNREACHABLE', attempts: '3' }, 'a refused connection is retried');
    const answers = [first];
    while (answers.length < 4 && answers.at(-1)?.code !== 'CIRCUIT_OPEN') answers.push(await conditions());
    t.equal(answers.at(-1)?.code, 'CIRCUIT_OPEN', `the circuit opens (${answers.map((a) => a.code).join(', ')})`);
    t.equal(await circuitGauge(), '2', 'outrigger_outbound_circuit_state 2 (open)');
    await chaos('reset.sh');
    await closes('after the cut, reset.sh and the half-open trial');
  },
);

t.test('the chaos scripts and the docs they point to exist', async (t) => {
  const names = readdirSync(join(ROOT, 'scripts/chaos')).filter((name) => name.endsWith('.sh') && name !== 'lib.sh');
  t.same(names.sort(), [
    'broker-latency.sh',
    'cut-broker.sh',
    'cut-weather.sh',
    'postgres-latency.sh',
    'reset.sh',
    'weather-latency.sh',
  ]);
  const docs = read('docs/kubernetes.md');
  for (const name of names) t.match(docs, `scripts/chaos/${name}`, `docs/kubernetes.md documents ${name}`);
});
