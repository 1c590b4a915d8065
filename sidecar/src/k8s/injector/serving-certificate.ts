// The HTTPS server's certificate and key, read from files (a mounted Secret)
// and read again when they change, so a rotated certificate is served without
// a restart. A pair that does not load (half-written, mismatched) is logged
// and the previous one stays in use.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Logger } from '../../telemetry/logger.ts';
import { checkPem } from '../../tls/key-pair.ts';
import type { InjectorMetrics } from './injector-metrics.ts';

export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

export interface KeyPair {
  cert: string;
  key: string;
  /** When the certificate expires. */
  notAfter: Date;
}

export class CertificateError extends Error {
  readonly isCertificateError = true;
}

export const isCertificateError = (error: unknown): error is CertificateError =>
  typeof error === 'object' && error !== null && (error as CertificateError).isCertificateError === true;

/** Reads and checks the pair: both files readable, PEM, and the key belongs to the certificate. */
function loadKeyPair({ certFile, keyFile }: CertificateFiles): KeyPair {
  const read = (file: string, flag: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new CertificateError(`${flag} ${file}: cannot read the file (${code})`);
    }
  };
  const cert = read(certFile, '--tls-cert');
  const key = read(keyFile, '--tls-key');
  const { pem, problems } = checkPem({ cert, key });
  const problem = problems?.[0];
  if (problem?.file === 'key') {
    throw new CertificateError(`--tls-key ${keyFile}: not the key of ${certFile} (${problem.error.message})`);
  }
  const certificate = pem?.certificate;
  if (certificate === undefined) throw new CertificateError(`--tls-cert ${certFile}: not a PEM certificate`);
  return { cert, key, notAfter: new Date(certificate.validTo) };
}

/** How often the files are checked; a Secret update reaches the pod within a minute or so anyway. */
const POLL_INTERVAL_MS = 1_000;

export class ServingCertificate {
  private current: KeyPair;
  private readonly files: CertificateFiles;
  private readonly listeners: ((pair: KeyPair) => void)[] = [];
  private readonly watched: { file: string; listener: () => void }[] = [];
  private readonly deps: { logger: Logger; metrics: InjectorMetrics };

  constructor(files: CertificateFiles, deps: { logger: Logger; metrics: InjectorMetrics }) {
    this.files = files;
    this.deps = deps;
    this.current = loadKeyPair(files);
    deps.metrics.certificateExpiry.set(this.current.notAfter.getTime() / 1000);
  }

  get pair(): KeyPair {
    return this.current;
  }

  onChange(listener: (pair: KeyPair) => void): void {
    this.listeners.push(listener);
  }

  /** Polls both files (stat follows the symlinks a Secret volume swaps on update). */
  watch(): void {
    for (const file of [this.files.certFile, this.files.keyFile]) {
      const listener = () => this.reload();
      watchFile(file, { interval: POLL_INTERVAL_MS, persistent: false }, listener);
      this.watched.push({ file, listener });
    }
  }

  close(): void {
    for (const { file, listener } of this.watched.splice(0)) unwatchFile(file, listener);
  }

  private reload(): void {
    const { logger, metrics } = this.deps;
    let next: KeyPair;
    try {
      next = loadKeyPair(this.files);
    } catch (error) {
      // Often the first of two files written: the next change event loads the pair.
      metrics.certificateReloads.inc({ result: 'failed' });
      logger.warn({ err: error }, 'serving certificate not reloaded; the previous one stays in use');
      return;
    }
    if (next.cert === this.current.cert && next.key === this.current.key) return;
    this.current = next;
    for (const listener of this.listeners) listener(next);
    metrics.certificateReloads.inc({ result: 'loaded' });
    metrics.certificateExpiry.set(next.notAfter.getTime() / 1000);
    logger.info({ notAfter: next.notAfter.toISOString() }, 'serving certificate reloaded');
  }
}
