import t from 'tap';
import { isQuantity, parseQuantity, requestsOverLimits } from './quantity.ts';

t.test('the forms Kubernetes accepts, in base units', async (t) => {
  t.equal(parseQuantity('250m'), 0.25);
  t.equal(parseQuantity('2'), 2);
  t.equal(parseQuantity('1.5'), 1.5);
  t.equal(parseQuantity('.5'), 0.5);
  t.equal(parseQuantity('64Mi'), 64 * 1024 * 1024);
  t.equal(parseQuantity('1Gi'), 1024 ** 3);
  t.equal(parseQuantity('128M'), 128e6);
  t.equal(parseQuantity('1k'), 1000);
  t.equal(parseQuantity('2e3'), 2000);
  t.equal(parseQuantity('1E'), 1e18, 'E alone is exa');
  t.ok((parseQuantity('512Mi') as number) > (parseQuantity('256Mi') as number));
});

t.test('anything else is refused', async (t) => {
  for (const text of ['', '-1', '64MB', '1 Gi', 'Mi', '0x10', '1.2.3', '64mi', '1Ki5', ' 1']) {
    t.notOk(isQuantity(text), JSON.stringify(text));
    t.equal(parseQuantity(text), undefined);
  }
});

t.test('requests over limits: every resource a sidecar may name, compared as amounts', async (t) => {
  t.same(requestsOverLimits({}), []);
  t.same(
    requestsOverLimits({
      requests: { cpu: '500m', memory: '1Gi', 'ephemeral-storage': '2Gi' },
      limits: { cpu: '1', memory: '1024Mi', 'ephemeral-storage': '1Gi' },
    }),
    [{ name: 'ephemeral-storage', request: '2Gi', limit: '1Gi' }],
    'equal amounts in other units are fine',
  );
  t.same(
    requestsOverLimits({ requests: { cpu: '2', memory: '64Mi' }, limits: { cpu: '1500m' } }),
    [{ name: 'cpu', request: '2', limit: '1500m' }],
    'a request without a limit is fine',
  );
});
