import t from 'tap';
import { admissionReview, patchOf, sidecarOf } from '../../../test/support/injected-sidecar.ts';
import { isProblemError } from '../../api/problems.ts';
import { parseAdmissionReview } from './admission-review.ts';
import { loadInjectorConfig } from './injector-config.ts';
import { decide } from './mutate.ts';

const config = loadInjectorConfig();

const pod = (annotations?: Record<string, string>, spec: Record<string, unknown> = {}) => ({
  metadata: { name: 'web', ...(annotations === undefined ? {} : { annotations }) },
  spec: { containers: [{ name: 'app', image: 'app:1' }], ...spec },
});
const inject = { 'outrigger.dev/inject': 'true' };

t.test('an annotated pod: allowed with a JSON Patch, the uid echoed', async (t) => {
  const decision = decide(admissionReview(pod(inject)), config);
  t.equal(decision.result, 'injected');
  t.match(decision.response, { uid: 'c0ffee', allowed: true, patchType: 'JSONPatch' });
  t.equal(sidecarOf(patchOf(decision.response.patch)).name, 'outrigger', 'the sidecar is added');
  t.equal(decision.response.warnings, undefined, 'no warnings when there is nothing to warn of');
  t.equal(decision.reason, 'app id web from the pod name "web"', 'the log line says where the app id came from');
});

t.test('left untouched: allowed without a patch', async (t) => {
  const untouched: [string, ReturnType<typeof admissionReview>][] = [
    ['no annotations', admissionReview(pod())],
    ['inject: "false"', admissionReview(pod({ 'outrigger.dev/inject': 'false' }))],
    ['inject: "True" (only "true" opts in)', admissionReview(pod({ 'outrigger.dev/inject': 'True' }))],
    ['kube-system', admissionReview(pod(inject), { namespace: 'kube-system' })],
    ['an update', admissionReview(pod(inject), { operation: 'UPDATE' })],
    ['not a pod', admissionReview({ metadata: {} }, { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } })],
    [
      'already injected (reinvocation)',
      admissionReview(
        pod(inject, { initContainers: [{ name: 'outrigger', image: 'ghcr.io/outrigger/outrigger:0.1.0' }] }),
      ),
    ],
    ['no annotations and a strange body', admissionReview({ metadata: { annotations: 7 } })],
  ];
  for (const [what, request] of untouched) {
    const decision = decide(request, config);
    t.equal(decision.result, 'skipped', what);
    t.same(decision.response, { uid: 'c0ffee', allowed: true }, `${what}: no patch`);
  }
});

t.test('bad annotations: refused with 400 and a message naming them', async (t) => {
  const decision = decide(
    admissionReview(pod({ ...inject, 'outrigger.dev/app-port': 'eighty', 'outrigger.dev/memory-limit': 'lots' })),
    config,
  );
  t.equal(decision.result, 'denied');
  t.equal(decision.response.allowed, false);
  t.equal(decision.response.patch, undefined);
  t.equal(decision.response.status?.code, 400);
  t.match(
    decision.response.status?.message,
    /outrigger\.dev\/app-port: "eighty" is not valid.*; outrigger\.dev\/memory-limit: "lots"/,
  );

  const hostNetwork = decide(admissionReview(pod(inject, { hostNetwork: true })), config);
  t.equal(hostNetwork.result, 'denied');
  t.match(hostNetwork.response.status?.message, /hostNetwork/);
});

t.test('volume mounts: in the patch, refused naming the missing volume, never added twice', async (t) => {
  const mounts = { ...inject, 'outrigger.dev/volume-mounts': 'weather-token:/var/run/secrets/weather' };
  const volumes = [{ name: 'weather-token', secret: { secretName: 'weather-api' } }];
  const injected = decide(admissionReview(pod(mounts, { volumes })), config);
  t.equal(injected.result, 'injected');
  const sidecar = sidecarOf(patchOf(injected.response.patch));
  t.same(sidecar.volumeMounts.at(-1), {
    name: 'weather-token',
    mountPath: '/var/run/secrets/weather',
    readOnly: true,
  });

  const missing = decide(admissionReview(pod(mounts)), config);
  t.equal(missing.result, 'denied');
  t.same(missing.response, {
    uid: 'c0ffee',
    allowed: false,
    status: {
      code: 400,
      message:
        'outrigger.dev/volume-mounts: "weather-token:/var/run/secrets/weather" is not valid: ' +
        'the pod has no volume "weather-token" in spec.volumes (it declares none)',
    },
  });

  // /var/run is a link to /run in the sidecar's image: nested where the runtime mounts them, so refused.
  const twoVolumes = [...volumes, { name: 'ledger-tls', secret: { secretName: 'ledger-tls' } }];
  const linked = decide(
    admissionReview(
      pod(
        { ...inject, 'outrigger.dev/volume-mounts': 'weather-token:/var/run/x,ledger-tls:/run/x/y' },
        { volumes: twoVolumes },
      ),
    ),
    config,
  );
  t.equal(linked.result, 'denied');
  t.equal(
    linked.response.status?.message,
    'outrigger.dev/volume-mounts: "ledger-tls:/run/x/y" is not valid: /run/x/y overlaps "weather-token:/var/run/x" ' +
      '(/var/run is a link to /run in the image)',
  );

  // Reinvoked: the pod already has the sidecar and its mounts, so nothing is added (or checked) again.
  const again = { name: 'outrigger', image: 'x', volumeMounts: [sidecar.volumeMounts.at(-1)] };
  const reinvoked = decide(admissionReview(pod(mounts, { volumes, initContainers: [again] })), config);
  t.equal(reinvoked.result, 'skipped');
  t.same(reinvoked.response, { uid: 'c0ffee', allowed: true });
  // Not checked again either: an annotation that a first injection would refuse passes untouched.
  const unchecked = decide(
    admissionReview(
      pod(
        { ...inject, 'outrigger.dev/volume-mounts': 'no-such-volume:/var/run/secrets/x' },
        { volumes, initContainers: [again] },
      ),
    ),
    config,
  );
  t.equal(unchecked.result, 'skipped', 'an already injected pod is let be, its annotations unchecked');
  t.same(unchecked.response, { uid: 'c0ffee', allowed: true });
});

t.test('outbox URL Secret: the secretKeyRef in the patch; a bad value refused, naming it', async (t) => {
  const injected = decide(
    admissionReview(pod({ ...inject, 'outrigger.dev/outbox-url-secret': 'orders-db:url' })),
    config,
  );
  t.equal(injected.result, 'injected');
  const sidecar = sidecarOf(patchOf(injected.response.patch));
  t.same(
    sidecar.env.filter((variable) => variable.name === 'OUTRIGGER_OUTBOX_URL'),
    [{ name: 'OUTRIGGER_OUTBOX_URL', valueFrom: { secretKeyRef: { name: 'orders-db', key: 'url', optional: false } } }],
  );
  t.equal(injected.response.warnings, undefined, 'a known annotation: no warning');

  const refused = decide(
    admissionReview(pod({ ...inject, 'outrigger.dev/outbox-url-secret': 'shop/orders-db' })),
    config,
  );
  t.equal(refused.result, 'denied');
  t.same(refused.response, {
    uid: 'c0ffee',
    allowed: false,
    status: {
      code: 400,
      message:
        'outrigger.dev/outbox-url-secret: "shop/orders-db" is not valid: ' +
        "expected SECRET:KEY, a Secret in the pod's namespace and the key holding the URL",
    },
  });
  t.equal(refused.reason, refused.response.status?.message, 'the log line says the same');
});

t.test('an annotated object that is not a pod: refused as an error, no crash', async (t) => {
  const decision = decide(admissionReview({ metadata: { annotations: inject }, spec: { containers: 'app' } }), config);
  t.equal(decision.result, 'error');
  t.match(decision.response, { uid: 'c0ffee', allowed: false, status: { code: 400 } });
  t.match(decision.response.status?.message, /request\.object is not a valid pod: spec\.containers/);
});

t.test('warnings reach the response', async (t) => {
  const decision = decide(
    admissionReview(
      pod(
        { ...inject, 'outrigger.dev/app-prot': '8080' },
        { containers: [{ name: 'app', image: 'a', ports: [{ containerPort: 3600 }] }] },
      ),
    ),
    config,
  );
  t.equal(decision.result, 'injected');
  t.match(decision.response.warnings, [/unknown annotation outrigger\.dev\/app-prot/, /declares port 3600/]);
});

t.test('a body that is not an AdmissionReview: a 400 problem naming the field', async (t) => {
  const cases: [unknown, RegExp][] = [
    [null, /expected object/],
    [[], /expected object/],
    ['review', /expected object/],
    [
      { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} },
      /apiVersion: expected "admission\.k8s\.io\/v1"/,
    ],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'Review' }, /kind: expected "AdmissionReview"/],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /request: expected the review's request/],
    [
      {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: '', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE' },
      },
      /request\.uid: expected a non-empty string/,
    ],
  ];
  for (const [body, expected] of cases) {
    const error = (() => {
      try {
        parseAdmissionReview(body);
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    t.ok(isProblemError(error), JSON.stringify(body));
    t.match(error as { status: number; code: string; detail: string }, {
      status: 400,
      code: 'REQUEST_INVALID',
      detail: expected,
    });
  }
});
