// charts/outrigger as rendered, against what a cluster operator relies on:
// it lints cleanly, its schema catches typos, every object is labelled and
// wired to the others, the webhook matches the injector's contract, its
// certificate is trusted by its caBundle, and the rendered args, config file
// and Secret run the real injector. chart-outrigger-cluster.test.ts installs it
// into a real API server.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  KubernetesObject,
  V1ConfigMap,
  V1Deployment,
  V1MutatingWebhookConfiguration,
  V1NetworkPolicy,
  V1PodDisruptionBudget,
  V1RoleBinding,
  V1Secret,
  V1Service,
} from '@kubernetes/client-node';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { DRAIN_MS, STOP_GRACE_MS, TERMINATION_GRACE_MS } from '../src/k8s/injector/injector.ts';
import { isSecretKey, loadInjectorConfig } from '../src/k8s/injector/injector-config.ts';
import { INJECTED_ENV } from '../src/k8s/injector/sidecar-container.ts';
import { byKind, createHelm, one, parseObjects } from './support/helm.ts';
import { admissionReviewBody } from './support/injected-sidecar.ts';
import { b64, CHART, chartYaml, edgeValues, isSubset, NS, trusted } from './support/outrigger-chart.ts';
import { configFile, exitFailure, runCli } from './support/sidecar-process.ts';
import { until } from './support/wait.ts';

const helm = await createHelm(t);

/** The parts of values.schema.json that say which sidecar.env names are the injector's. */
interface SidecarSchema {
  properties: {
    sidecar: {
      properties: { env: { items: { properties: { name: { not: { enum: string[] } } } } } };
      then: { properties: { env: { items: { properties: { name: { not: { const: string } } } } } } };
    };
  };
}

t.test('helm lint --strict is clean with default and non-default values', async (t) => {
  for (const [name, values] of [
    ['default', {}],
    ['non-default', edgeValues],
    [
      'cert-manager with an existing ClusterIssuer',
      { certManager: { enabled: true, issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer' } } },
    ],
  ] as const) {
    const result = await helm.run(['lint', '--strict', CHART, '--namespace', NS, ...(await helm.values(values))]);
    t.equal(result.code, 0, `${name}: ${result.stdout}${result.stderr}`);
    t.notMatch(result.stdout, /\[(WARNING|ERROR)\]/, `${name}: no warnings`);
  }
});

t.test('values.schema.json refuses typos and wrong types, naming the value', async (t) => {
  for (const [values, message] of [
    [{ injector: { replica: 3 } }, /\/injector.*additional properties 'replica' not allowed/],
    [{ webhook: { failurePolicy: 'Sometimes' } }, /\/webhook\/failurePolicy.*'Ignore', 'Fail'/],
    [{ certManager: { enabled: 'yes' } }, /\/certManager\/enabled.*boolean/],
    [{ sidecar: { rbac: { namespaces: [{ namespace: 'Demo_NS' }] } } }, /\/sidecar\/rbac\/namespaces\/0\/namespace/],
    [{ sidecar: { logLevel: 'loud' } }, /\/sidecar\/logLevel/],
    [{ metrics: { serviceMonitor: { enable: true } } }, /additional properties 'enable' not allowed/],
  ] as const) {
    const args = [CHART, '--namespace', NS, ...(await helm.values(values))];
    const lint = await helm.run(['lint', '--strict', ...args]);
    t.not(lint.code, 0, `lint fails: ${JSON.stringify(values)}`);
    t.match(lint.stdout + lint.stderr, message, 'lint names the value');
    const template = await helm.run(['template', 'outrigger', ...args]);
    t.not(template.code, 0, 'template fails too');
    t.match(template.stderr, message, 'template names the value');
  }
});

// What the injector refuses at startup the schema refuses at install: an injector that crash-loops on its config
// injects nothing, and with failurePolicy Ignore pods are created without their sidecar, silently.
t.test(
  'values.schema.json refuses what the injector refuses: an env name it sets, a key no Secret can have',
  async (t) => {
    const schema = JSON.parse(readFileSync(`${CHART}/values.schema.json`, 'utf8')) as SidecarSchema;
    const { properties, then } = schema.properties.sidecar;
    t.same(
      [...properties.env.items.properties.name.not.enum, then.properties.env.items.properties.name.not.const].sort(),
      [...INJECTED_ENV].sort(),
      'the names the schema refuses are the injector’s INJECTED_ENV',
    );

    // helm, and the injector given the config helm renders without the schema, refuse the same entries
    // (OUTRIGGER_BROKER_URL only when the config has a brokerUrlSecret: the schema's if/then).
    const verdicts = async (sidecar: object) => {
      const args = ['template', 'outrigger', CHART, '--namespace', NS, ...(await helm.values({ sidecar }))];
      const [checked, unchecked] = await Promise.all([helm.run(args), helm.run([...args, '--skip-schema-validation'])]);
      t.equal(unchecked.code, 0, `rendered without the schema: ${unchecked.stderr}`);
      const file = configFile(
        t,
        one<V1ConfigMap>(parseObjects(unchecked.stdout), 'ConfigMap').data?.['config.yaml'] ?? '',
      );
      let injector = '';
      try {
        loadInjectorConfig(file);
      } catch (error) {
        injector = String(error);
      }
      return { helm: checked.code === 0 ? '' : checked.stderr, injector };
    };
    const names = [...INJECTED_ENV, 'OTEL_SERVICE_NAME', 'HTTPS_PROXY', '1ST', 'NO-PROXY', '_x'];
    const env = names.map((name) => ({ name, value: 'x' }));
    // The names of the entries an error names by index.
    const named = (text: string, pattern: RegExp) =>
      [...text.matchAll(pattern)].map((match) => names[Number(match[1])]);
    for (const [brokerUrlSecret, refused] of [
      [{ name: 'rabbitmq' }, [...INJECTED_ENV, '1ST', 'NO-PROXY']],
      [{ name: '' }, [...INJECTED_ENV.filter((name) => name !== 'OUTRIGGER_BROKER_URL'), '1ST', 'NO-PROXY']],
    ] as const) {
      const verdict = await verdicts({ brokerUrlSecret, env });
      const secret = `brokerUrlSecret.name ${JSON.stringify(brokerUrlSecret.name)}`;
      t.same(named(verdict.helm, /at '\/sidecar\/env\/(\d+)\/name'/g).sort(), [...refused].sort(), `${secret}: helm`);
      t.same(named(verdict.injector, /: env\[(\d+)\]\.name: /g).sort(), [...refused].sort(), `${secret}: the injector`);
    }
    // A name set twice: a schema cannot say "unique by name", the template says it; the injector, given the
    // config helm renders for the first two entries with the third added, refuses it the same.
    const env2 = [
      { name: 'HTTPS_PROXY', value: 'http://a:3128' },
      { name: 'NO_PROXY', value: '.svc' },
    ];
    const twice = await helm.run([
      'template',
      'outrigger',
      CHART,
      '--namespace',
      NS,
      ...(await helm.values({ sidecar: { env: [...env2, { name: 'HTTPS_PROXY', value: 'http://b:3128' }] } })),
    ]);
    t.match(twice.stderr, /sidecar\.env: "HTTPS_PROXY" is set twice/, 'a name set twice: helm refuses it');
    const once = await helm.run([
      'template',
      'outrigger',
      CHART,
      '--namespace',
      NS,
      ...(await helm.values({ sidecar: { env: env2 } })),
    ]);
    const config = parseYaml(one<V1ConfigMap>(parseObjects(once.stdout), 'ConfigMap').data?.['config.yaml'] ?? '');
    config.env.push({ name: 'HTTPS_PROXY', value: 'http://b:3128' });
    t.throws(
      () => loadInjectorConfig(configFile(t, config)),
      /duplicate variable "HTTPS_PROXY"/,
      'and so does the injector',
    );
    const keys = [
      'url',
      'uri.txt',
      '.url',
      'a..b',
      '_',
      'k'.repeat(253),
      '.',
      '..',
      '..url',
      '',
      'a/b',
      'k'.repeat(254),
    ];
    const keyVerdicts = await Promise.all(keys.map((key) => verdicts({ brokerUrlSecret: { name: 'rabbitmq', key } })));
    keys.forEach((key, i) => {
      const verdict = keyVerdicts[i];
      const name = `key ${key.length > 20 ? `of ${key.length} characters` : JSON.stringify(key)}`;
      const taken = isSecretKey(key);
      t.equal(verdict?.injector === '', taken, `${name}: the injector ${taken ? 'takes' : 'refuses'} it`);
      if (taken) t.equal(verdict?.helm, '', `${name}: helm takes it`);
      else t.match(verdict?.helm, /at '\/sidecar\/brokerUrlSecret\/key'/, `${name}: helm refuses it, naming it`);
    });
  },
);

t.test('a cluster older than 1.32 is refused (native sidecars, CRD selectableFields)', async (t) => {
  const old = await helm.run(['template', 'outrigger', CHART, '--kube-version', '1.31.4']);
  t.not(old.code, 0);
  t.match(old.stderr, /kubeVersion: >=1\.32\.0-0 which is incompatible with Kubernetes v1\.31\.4/);
  const current = await helm.run(['template', 'outrigger', CHART, '--kube-version', '1.32.0']);
  t.equal(current.code, 0, current.stderr);
});

t.test('every object carries the app.kubernetes.io labels, and selectors select', async (t) => {
  for (const [name, values] of [
    ['default', {}],
    ['non-default', edgeValues],
  ] as const) {
    const objects = await helm.template(CHART, 'outrigger', NS, values);
    t.ok(objects.length >= 8, `${name}: rendered ${objects.length} objects`);
    for (const object of objects) {
      const labels = object.metadata?.labels ?? {};
      t.match(
        labels,
        {
          'app.kubernetes.io/name': 'outrigger',
          'app.kubernetes.io/instance': 'outrigger',
          'app.kubernetes.io/version': chartYaml.appVersion,
          'app.kubernetes.io/managed-by': 'Helm',
          'app.kubernetes.io/component': /^(injector|sidecar)$/,
          'helm.sh/chart': `outrigger-${chartYaml.version}`,
        },
        `${name}: ${object.kind} ${object.metadata?.name}`,
      );
    }
    const deployment = one<V1Deployment>(objects, 'Deployment');
    const podLabels = deployment.spec?.template.metadata?.labels;
    t.ok(isSubset(deployment.spec?.selector.matchLabels, podLabels), `${name}: the Deployment selects its pods`);
    t.equal(podLabels?.['app.kubernetes.io/component'], 'injector');
    const service = one<V1Service>(objects, 'Service');
    t.ok(isSubset(service.spec?.selector, podLabels), `${name}: the Service selects the injector pods`);
    for (const pdb of byKind<V1PodDisruptionBudget>(objects, 'PodDisruptionBudget')) {
      t.ok(isSubset(pdb.spec?.selector?.matchLabels, podLabels), `${name}: the PDB selects the injector pods`);
    }
  }
});

t.test('the webhook: the injector contract, and a certificate its caBundle trusts', async (t) => {
  const objects = await helm.template(CHART, 'outrigger', NS);
  const config = one<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration');
  t.equal(config.webhooks?.length, 1);
  const webhook = config.webhooks?.[0];
  t.match(webhook, {
    sideEffects: 'None',
    reinvocationPolicy: 'IfNeeded',
    failurePolicy: 'Ignore',
    timeoutSeconds: 5,
    clientConfig: { service: { name: 'outrigger-injector', namespace: NS, path: '/mutate', port: 443 } },
  });
  // t.same, not t.match: t.match takes an array as a prefix, so an extra rule or operation would pass.
  t.same(webhook?.admissionReviewVersions, ['v1']);
  t.same(webhook?.rules, [
    { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' },
  ]);
  t.same(webhook?.namespaceSelector?.matchExpressions, [
    { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', NS] },
  ]);

  const service = one<V1Service>(objects, 'Service');
  t.same(
    service.spec?.ports?.map(({ name, port, targetPort }) => ({ name, port, targetPort })),
    [{ name: 'https', port: 443, targetPort: 'webhook' }],
    'only the webhook port is exposed (no metrics port without a ServiceMonitor)',
  );
  const deployment = one<V1Deployment>(objects, 'Deployment');
  const container = deployment.spec?.template.spec?.containers[0];
  t.equal(container?.ports?.find((port) => port.name === 'webhook')?.containerPort, 8443);
  t.same(container?.args, [
    'injector',
    ...['--tls-cert', '/etc/outrigger/tls/tls.crt', '--tls-key', '/etc/outrigger/tls/tls.key'],
    ...['--port', '8443', '--ops-port', '9464', '--config', '/etc/outrigger/config/config.yaml'],
    ...['--log-level', 'info'],
  ]);
  const secret = one<V1Secret>(objects, 'Secret');
  t.equal(
    deployment.spec?.template.spec?.volumes?.find((volume) => volume.name === 'tls')?.secret?.secretName,
    secret.metadata?.name,
    'the injector mounts the certificate Secret',
  );

  const bundle = b64(webhook?.clientConfig.caBundle);
  t.equal(bundle, b64(secret.data?.['ca.crt']), 'caBundle is the Secret’s CA (no previous CA under helm template)');
  await trusted(
    t,
    b64(secret.data?.['tls.crt']),
    b64(secret.data?.['tls.key']),
    bundle,
    `outrigger-injector.${NS}.svc`,
  );
});

t.test('the rendered args, config file and certificate run the real injector', async (t) => {
  // What the Deployment's pod gets, in a temp dir instead of /etc/outrigger: the
  // Secret and ConfigMap as mounted files, the container's args unchanged but
  // for the paths, and loopback ports for this machine.
  const objects = await helm.template(CHART, 'outrigger', NS, { sidecar: edgeValues.sidecar });
  const dir = mkdtempSync(join(tmpdir(), 'outrigger-chart-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const secret = one<V1Secret>(objects, 'Secret');
  mkdirSync(join(dir, 'tls'));
  mkdirSync(join(dir, 'config'));
  for (const key of ['tls.crt', 'tls.key']) writeFileSync(join(dir, 'tls', key), b64(secret.data?.[key]));
  writeFileSync(join(dir, 'config', 'config.yaml'), one<V1ConfigMap>(objects, 'ConfigMap').data?.['config.yaml'] ?? '');
  const args = (one<V1Deployment>(objects, 'Deployment').spec?.template.spec?.containers[0]?.args ?? []).map(
    (arg, i, all) => {
      if (all[i - 1] === '--port' || all[i - 1] === '--ops-port') return '0';
      return arg.replace(/^\/etc\/outrigger\//, `${dir}/`);
    },
  );
  const injector = runCli(t, [...args, '--host', '127.0.0.1']);
  const started = await until(
    'the injector to log "injector started"',
    () => injector.logs.find((line) => line.msg === 'injector started'),
    { failOn: exitFailure(injector, 'the injector') },
  );
  t.equal((await fetch(`${started.ops}/readyz`)).status, 200, 'ready on the ops port the probes use');

  // A review as the API server sends it, over TLS trusting only the caBundle, for the Service's name.
  const bundle = b64(
    one<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration').webhooks?.[0]?.clientConfig.caBundle,
  );
  const review = admissionReviewBody(
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'orders', namespace: 'demo', annotations: { 'outrigger.dev/inject': 'true' } },
      spec: { containers: [{ name: 'app', image: 'registry.example.com/orders:1' }] },
    },
    { uid: 'b2c5a3e8-0000-4000-8000-000000000001', namespace: 'demo' },
  );
  const { port } = new URL(String(started.webhook));
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/mutate',
        method: 'POST',
        ca: bundle,
        servername: `outrigger-injector.${NS}.svc`,
        headers: { 'content-type': 'application/json' },
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('the injector did not answer')));
    req.on('error', reject);
    req.end(JSON.stringify(review));
  });
  t.equal(answer.status, 200);
  const response = JSON.parse(answer.body).response as { allowed: boolean; patch?: string };
  t.equal(response.allowed, true);
  const patch = JSON.stringify(JSON.parse(b64(response.patch)));
  t.match(patch, 'registry.example.com/outrigger-sidecar:0.1.0-debug', 'the sidecar image from the chart’s config');
  t.match(patch, /"name":"OUTRIGGER_BROKER_URL","valueFrom":\{"secretKeyRef":\{"name":"rabbitmq","key":"uri"/);
  t.match(patch, 'OTEL_EXPORTER_OTLP_ENDPOINT', 'the extra env');
  await injector.stop();
});

t.test('non-default values reach the webhook, the certificate and the injector config', async (t) => {
  const objects = await helm.template(CHART, 'outrigger', NS, edgeValues);
  const config = one<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration');
  const webhook = config.webhooks?.[0];
  t.equal(webhook?.failurePolicy, 'Fail');
  t.equal(webhook?.timeoutSeconds, 3);
  t.same(webhook?.namespaceSelector?.matchExpressions?.slice(1), edgeValues.webhook.namespaceSelectorExpressions);
  t.same(webhook?.objectSelector, edgeValues.webhook.objectSelector);
  t.notOk(webhook?.clientConfig.caBundle, 'no caBundle of its own: cert-manager injects it');
  t.equal(config.metadata?.annotations?.['cert-manager.io/inject-ca-from'], `${NS}/outrigger-injector`);
  t.equal(byKind(objects, 'Secret').length, 0, 'no generated Secret');
  const certificate = byKind<KubernetesObject & { spec: Record<string, unknown> }>(objects, 'Certificate').find(
    (c) => c.metadata?.name === 'outrigger-injector',
  );
  const deployment = one<V1Deployment>(objects, 'Deployment');
  const pod = deployment.spec?.template;
  t.equal(
    pod?.spec?.volumes?.find((volume) => volume.name === 'tls')?.secret?.secretName,
    certificate?.spec.secretName,
    'the injector mounts the Secret cert-manager writes',
  );
  t.ok(
    (certificate?.spec.dnsNames as string[] | undefined)?.includes(`outrigger-injector.${NS}.svc`),
    'for the Service name',
  );
  t.equal(pod?.metadata?.annotations?.['checksum/tls'], undefined, 'cert-manager renewals do not roll the pods');
  t.equal(pod?.spec?.containers[0]?.image, `${edgeValues.image.repository}@${edgeValues.image.digest}`);
  t.same(pod?.spec?.imagePullSecrets, [{ name: 'regcred' }]);
  t.equal(pod?.metadata?.labels?.team, 'platform');
  t.same(pod?.spec?.topologySpreadConstraints, edgeValues.injector.topologySpreadConstraints);
  t.equal(byKind(objects, 'PodDisruptionBudget').length, 0, 'no PDB with one replica: it would block every drain');

  const injectorConfig = parseYaml(one<V1ConfigMap>(objects, 'ConfigMap').data?.['config.yaml'] ?? '');
  t.same(injectorConfig, {
    image: 'registry.example.com/outrigger-sidecar:0.1.0-debug',
    imagePullPolicy: 'Always',
    httpPort: 4600,
    opsPort: 9464,
    logLevel: 'debug',
    resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } },
    brokerUrlSecret: { name: 'rabbitmq', key: 'uri' },
    env: edgeValues.sidecar.env,
  });

  const monitor = one<KubernetesObject & { spec: { selector: { matchLabels: Record<string, string> } } }>(
    objects,
    'ServiceMonitor',
  );
  const service = one<V1Service>(objects, 'Service');
  t.ok(isSubset(monitor.spec.selector.matchLabels, service.metadata?.labels), 'the ServiceMonitor selects the Service');
  t.equal((monitor.spec as { endpoints?: unknown[] }).endpoints?.length, 1, 'one endpoint');
  t.match(monitor.spec, { endpoints: [{ port: 'metrics', path: '/metrics' }] });
  t.equal(service.spec?.ports?.find((port) => port.name === 'metrics')?.targetPort, 'ops');
  t.equal(monitor.metadata?.labels?.release, 'prometheus');
});

t.test('defaults: the injector config, a PDB, and checksums that roll the pods on change', async (t) => {
  const objects = await helm.template(CHART, 'outrigger', NS);
  const injectorConfig = parseYaml(one<V1ConfigMap>(objects, 'ConfigMap').data?.['config.yaml'] ?? '');
  t.same(injectorConfig, {
    image: `ghcr.io/outrigger/outrigger:${chartYaml.appVersion}`,
    imagePullPolicy: 'IfNotPresent',
    httpPort: 3600,
    opsPort: 9464,
    logLevel: 'info',
    resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } },
    env: [],
  });
  const deployment = one<V1Deployment>(objects, 'Deployment');
  t.equal(deployment.spec?.replicas, 2);
  t.match(one<V1PodDisruptionBudget>(objects, 'PodDisruptionBudget').spec, { minAvailable: 1 });

  const changed = await helm.template(CHART, 'outrigger', NS, { sidecar: { logLevel: 'debug' } });
  const annotations = (objects: KubernetesObject[]) =>
    one<V1Deployment>(objects, 'Deployment').spec?.template.metadata?.annotations ?? {};
  t.not(annotations(changed)['checksum/config'], annotations(objects)['checksum/config'], 'config change rolls');
  t.not(
    annotations(changed)['checksum/tls'],
    annotations(objects)['checksum/tls'],
    'each render has a new certificate',
  );
});

t.test('the injector runs locked down and with no API access', async (t) => {
  for (const values of [{}, edgeValues]) {
    const objects = await helm.template(CHART, 'outrigger', NS, values);
    const pod = one<V1Deployment>(objects, 'Deployment').spec?.template.spec;
    t.match(pod?.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    t.equal(pod?.automountServiceAccountToken, false, 'no token in the pod');
    t.equal(pod?.hostNetwork, undefined);
    t.match(pod?.containers[0]?.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    t.same(pod?.containers[0]?.securityContext?.capabilities, { drop: ['ALL'] });
    t.ok(pod?.containers[0]?.resources?.requests?.memory, 'resources set');
    t.match(pod?.containers[0], {
      livenessProbe: { httpGet: { path: '/healthz', port: 'ops' } },
      readinessProbe: { httpGet: { path: '/readyz', port: 'ops' } },
    });
    // The injector's stop is made for this grace: the drain (the default: the args set no --drain) and the
    // grace for reviews in flight end before SIGKILL. The longest drain --drain accepts is made to fit it
    // (MAX_DRAIN_MS, checked by the CLI case of injector.test.ts).
    const graceMs = (pod?.terminationGracePeriodSeconds ?? 0) * 1000;
    t.equal(graceMs, TERMINATION_GRACE_MS, 'the grace the injector expects');
    t.notOk(pod?.containers[0]?.args?.includes('--drain'), 'the default drain');
    // With 5 s left to close the ops port and exit.
    t.ok(DRAIN_MS + STOP_GRACE_MS + 5_000 <= graceMs, `a stop ends before SIGKILL (grace ${graceMs} ms)`);
    t.equal(
      one<KubernetesObject & { automountServiceAccountToken?: boolean }>(objects, 'ServiceAccount')
        .automountServiceAccountToken,
      false,
    );
    const policy = one<V1NetworkPolicy>(objects, 'NetworkPolicy');
    const podLabels = one<V1Deployment>(objects, 'Deployment').spec?.template.metadata?.labels;
    t.ok(isSubset(policy.spec?.podSelector?.matchLabels, podLabels), 'the NetworkPolicy selects the injector pods');
    t.same(policy.spec?.policyTypes, ['Ingress', 'Egress']);
    t.same(policy.spec?.egress, [], 'no egress: the injector calls nothing');
    const containerPorts = pod?.containers[0]?.ports?.map((port) => port.name);
    t.same(
      policy.spec?.ingress?.flatMap((rule) => rule.ports?.map((port) => port.port) ?? []),
      containerPorts,
      'ingress on the webhook and ops ports only',
    );
    const bindings = byKind<V1RoleBinding>(objects, 'RoleBinding').concat(byKind(objects, 'ClusterRoleBinding'));
    t.notOk(
      bindings.some((binding) => binding.subjects?.some((subject) => subject.name === 'outrigger-injector')),
      'nothing is bound to the injector’s ServiceAccount',
    );
  }
});
