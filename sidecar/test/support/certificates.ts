// Throwaway certificates for tests (the API server's, a webhook's), made by openssl.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface IssuedCertificate {
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
}

/**
 * A P-256 key and a certificate for it in `dir` as NAME.crt and NAME.key,
 * signed by the CA issued earlier as `ca` in the same dir (self-signed when
 * omitted). `subject` is in openssl's -subj syntax; `extensions` are -addext values.
 */
export async function issueCertificate(
  dir: string,
  name: string,
  subject: string,
  extensions: string[],
  ca?: string,
): Promise<IssuedCertificate> {
  const [cert, key] = [join(dir, `${name}.crt`), join(dir, `${name}.key`)];
  const signer = ca ? ['-CA', join(dir, `${ca}.crt`), '-CAkey', join(dir, `${ca}.key`)] : [];
  // `req -x509 -CA` (OpenSSL 3) makes and signs the certificate in one step.
  await execFileAsync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-noenc', '-days', '2'],
      ...['-keyout', key, '-out', cert, '-subj', subject, ...signer],
      ...extensions.flatMap((extension) => ['-addext', extension]),
    ],
    { timeout: 10_000 },
  );
  return { certPath: cert, keyPath: key, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
}
