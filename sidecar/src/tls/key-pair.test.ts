// The PEM checks both TLS callers share: what each kind of wrong file comes to.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { issueCertificate } from '../../test/support/certificates.ts';
import { checkPem } from './key-pair.ts';

const dir = mkdtempSync(join(tmpdir(), 'outrigger-key-pair-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const one = await issueCertificate(dir, 'one', '/CN=one', []);
const two = await issueCertificate(dir, 'two', '/CN=two', []);
const garbled = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';

t.test('a certificate with its key: a secure context, and the certificate', async (t) => {
  const { pem, problems } = checkPem({ ca: two.certPem, cert: one.certPem + two.certPem, key: one.keyPem });
  t.equal(problems, undefined);
  t.equal(pem?.certificate?.subject, 'CN=one', 'the first of the chain');
  t.ok(pem?.context);
  t.equal(checkPem({ ca: one.certPem }).pem?.certificate, undefined, 'no cert, no certificate');
});

t.test('certificate files: none in them, or one that does not parse; both named', async (t) => {
  t.same(checkPem({ ca: 'nothing', cert: `${one.certPem}${garbled}`, key: one.keyPem }).problems, [
    { file: 'ca', detail: 'holds no PEM certificate' },
    { file: 'cert', detail: 'holds a certificate that does not parse' },
  ]);
  t.same(checkPem({ cert: one.keyPem, key: one.keyPem }).problems, [
    { file: 'cert', detail: 'holds no PEM certificate' },
  ]);
});

t.test("the key: another certificate's, or not a key", async (t) => {
  t.match(checkPem({ cert: one.certPem, key: two.keyPem }).problems, [
    { file: 'key', mismatch: true, error: { code: 'ERR_OSSL_X509_KEY_VALUES_MISMATCH' } },
  ]);
  t.match(checkPem({ cert: one.certPem, key: 'not a key' }).problems, [{ file: 'key', mismatch: false, error: Error }]);
});
