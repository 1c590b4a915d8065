// PEM texts checked before TLS uses them: each certificate file holds PEM
// certificates that parse (Node takes a CA file with none and then trusts
// nothing), and the key is the certificate's. Each caller words the problems
// for its own settings: a target's TLS files (outbound/target-tls.ts), the
// injector's serving certificate (k8s/injector/serving-certificate.ts).
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export interface PemTexts {
  /** CA certificates to trust instead of the public ones. */
  ca?: string;
  /** A certificate (then its chain), shown with `key`. */
  cert?: string;
  key?: string;
}

type CertificatesProblem = 'holds no PEM certificate' | 'holds a certificate that does not parse';

/** For the key, `mismatch` when it is usable but another certificate's; `error` is OpenSSL's (code, message). */
export type PemProblem =
  | { file: 'ca' | 'cert'; detail: CertificatesProblem }
  | { file: 'key'; mismatch: boolean; error: Error & { code?: string } };

export interface CheckedPem {
  context: SecureContext;
  /** The first certificate in `cert` (the one `key` is for); none without `cert`. */
  certificate?: X509Certificate;
}

/** The texts as a secure context; or what is wrong: the certificate files' problems, else the key's. */
export function checkPem(
  texts: PemTexts,
): { pem: CheckedPem; problems?: never } | { pem?: never; problems: PemProblem[] } {
  const problems: PemProblem[] = [];
  let certificate: X509Certificate | undefined;
  for (const file of ['ca', 'cert'] as const) {
    const text = texts[file];
    if (text === undefined) continue;
    const certificates = parseCertificates(text);
    if (typeof certificates === 'string') problems.push({ file, detail: certificates });
    else if (file === 'cert') certificate = certificates[0];
  }
  if (problems.length > 0) return { problems };
  try {
    const context = createSecureContext({ ca: texts.ca, cert: texts.cert, key: texts.key });
    return { pem: { context, certificate } };
  } catch (error) {
    // The certificates parsed, so it is the key: one that does not parse, or that is not the certificate's.
    const code = (error as { code?: string }).code;
    return {
      problems: [{ file: 'key', mismatch: code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH', error: error as Error }],
    };
  }
}

/** Every PEM certificate in the text; or why there is none to use. */
function parseCertificates(text: string): X509Certificate[] | CertificatesProblem {
  const blocks = text.match(CERTIFICATE) ?? [];
  if (blocks.length === 0) return 'holds no PEM certificate';
  try {
    return blocks.map((block) => new X509Certificate(block));
  } catch {
    return 'holds a certificate that does not parse';
  }
}
