// The resource every span of a sidecar carries: which app, and in a pod the
// injector made, which replica (the downward-API variables it sets).
import t from 'tap';
import { sidecarResource } from './tracing-sdk.ts';

const options = { serviceName: 'orders', version: '1.2.3' };

t.test(
  "in an injected pod: the pod's name and namespace, from OUTRIGGER_POD_NAME and OUTRIGGER_NAMESPACE",
  async (t) => {
    const { attributes } = sidecarResource(options, {
      OUTRIGGER_POD_NAME: 'orders-7d9c6b5f4-x2k8q',
      OUTRIGGER_NAMESPACE: 'shop',
    });
    t.match(attributes, {
      'service.name': 'orders',
      'service.version': '1.2.3',
      'k8s.pod.name': 'orders-7d9c6b5f4-x2k8q',
      'k8s.namespace.name': 'shop',
    });
  },
);

t.test('outside a pod: no k8s attributes, even with OUTRIGGER_NAMESPACE (the namespace to watch)', async (t) => {
  const { attributes } = sidecarResource(options, { OUTRIGGER_NAMESPACE: 'shop' });
  t.match(attributes, { 'service.name': 'orders' });
  t.notOk('k8s.pod.name' in attributes || 'k8s.namespace.name' in attributes);
});

t.test('OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME still win', async (t) => {
  const saved = { attributes: process.env.OTEL_RESOURCE_ATTRIBUTES, name: process.env.OTEL_SERVICE_NAME };
  t.teardown(() => {
    if (saved.attributes === undefined) delete process.env.OTEL_RESOURCE_ATTRIBUTES;
    else process.env.OTEL_RESOURCE_ATTRIBUTES = saved.attributes;
    if (saved.name === undefined) delete process.env.OTEL_SERVICE_NAME;
    else process.env.OTEL_SERVICE_NAME = saved.name;
  });
  process.env.OTEL_RESOURCE_ATTRIBUTES = 'k8s.pod.name=set-by-hand,deployment.environment.name=prod';
  process.env.OTEL_SERVICE_NAME = 'orders-eu';
  const { attributes } = sidecarResource(options, { OUTRIGGER_POD_NAME: 'orders-1', OUTRIGGER_NAMESPACE: 'shop' });
  t.match(attributes, {
    'service.name': 'orders-eu',
    'k8s.pod.name': 'set-by-hand',
    'k8s.namespace.name': 'shop',
    'deployment.environment.name': 'prod',
  });
});
