// The injector's serving certificate at startup: the pair loaded, or why not, naming the flag.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { issueCertificate } from '../../../test/support/certificates.ts';
import { createLogger } from '../../telemetry/logger.ts';
import { InjectorMetrics } from './injector-metrics.ts';
import { ServingCertificate } from './serving-certificate.ts';

const dir = mkdtempSync(join(tmpdir(), 'outrigger-serving-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const one = await issueCertificate(dir, 'one', '/CN=one', []);
const two = await issueCertificate(dir, 'two', '/CN=two', []);
const notPem = join(dir, 'not.pem');
writeFileSync(notPem, 'not a certificate\n');
const load = (certFile: string, keyFile: string) =>
  new ServingCertificate({ certFile, keyFile }, { logger: createLogger('silent'), metrics: new InjectorMetrics() });

t.test('a certificate and its key: the pair, with its expiry', async (t) => {
  const { pair } = load(one.certPath, one.keyPath);
  t.equal(pair.cert, one.certPem);
  t.equal(pair.key, one.keyPem);
  t.ok(pair.notAfter.getTime() > Date.now(), 'notAfter from the certificate');
});

t.test('a file missing or wrong: a CertificateError naming the flag and the file', async (t) => {
  const missing = join(dir, 'missing.crt');
  t.throws(() => load(missing, one.keyPath), {
    isCertificateError: true,
    message: `--tls-cert ${missing}: cannot read the file (ENOENT)`,
  });
  t.throws(() => load(one.certPath, missing), { message: `--tls-key ${missing}: cannot read the file (ENOENT)` });
  t.throws(() => load(notPem, one.keyPath), { message: `--tls-cert ${notPem}: not a PEM certificate` });
  t.throws(() => load(one.certPath, two.keyPath), {
    message: new RegExp(`^--tls-key ${two.keyPath}: not the key of ${one.certPath} \\(.+\\)$`),
  });
  t.throws(() => load(one.certPath, notPem), { message: new RegExp(`^--tls-key ${notPem}: not the key of`) });
});
