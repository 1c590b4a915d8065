// A target's TLS settings (`tls`: caFile, certFile, keyFile, serverName), as
// the connector its pool makes new connections with. The files are read at
// startup: one missing or unusable is a configuration error naming the field,
// as for secret headers. After that they are Refreshed when a connection is
// made: a rotated Kubernetes secret (cert-manager renewing a client
// certificate, say) is used for the next connections without a restart;
// connections already open keep what they were made with. Files that cannot be
// read or used leave the last good set in use, with a warning.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { buildConnector } from 'undici';
import type { Target } from '../config/schema.ts';
import { Refreshed } from './refreshed.ts';

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

type Settings = NonNullable<Target['tls']>;
type FileField = 'caFile' | 'certFile' | 'keyFile';
const FILE_FIELDS: FileField[] = ['caFile', 'certFile', 'keyFile'];
type Texts = Partial<Record<FileField, string>>;

/** The files' contents, and the connector made of them. */
interface Loaded {
  texts: Texts;
  connect: buildConnector.connector;
}

/** What is wrong with one of the files. */
interface Problem {
  field: FileField;
  detail: string;
}

class TlsFilesError extends Error {
  readonly problems: Problem[];

  constructor(problems: Problem[]) {
    super(problems.map(({ field, detail }) => `${field}: ${detail}`).join('; '));
    this.problems = problems;
  }
}

export class TargetTls {
  /** The name each request asks the connection for, when `tls.serverName` sets one. */
  readonly serverName: string | undefined;
  private readonly loaded: Refreshed<Loaded>;

  private constructor(settings: Settings, timeoutMs: number, first: Loaded, onError: (problem: string) => void) {
    this.serverName = settings.serverName;
    const remake = (current: Loaded) => {
      const texts = readTexts(settings);
      if (FILE_FIELDS.every((name) => texts[name] === current.texts[name])) return current;
      try {
        return loadedOf(settings, texts, timeoutMs);
      } catch {
        // Read between the kubelet's updates of certFile and keyFile, perhaps: once more, now.
        return loadedOf(settings, readTexts(settings), timeoutMs);
      }
    };
    this.loaded = new Refreshed(first, remake, (error) => onError((error as Error).message));
  }

  /** Reads and checks the files now; or lists what is wrong with each, naming its field. Nothing without `tls`. */
  static resolve(
    target: Target,
    /** Where the target is written, for the messages: `targets[2]`, or `spec` for a resource. */
    field: string,
    onError: (problem: string) => void = () => {},
  ): { tls?: TargetTls; problems?: never } | { tls?: never; problems: string[] } {
    const settings = target.tls;
    if (settings === undefined) return {};
    try {
      const first = loadedOf(settings, readTexts(settings), target.timeout);
      return { tls: new TargetTls(settings, target.timeout, first, onError) };
    } catch (error) {
      if (!(error instanceof TlsFilesError)) throw error;
      return { problems: error.problems.map(({ field: name, detail }) => `${field}.tls.${name}: ${detail}`) };
    }
  }

  /** The pool's `connect` option: a connection made with the current files. */
  readonly connector: buildConnector.connector = (options, callback) =>
    this.loaded.current().connect(options, callback);
}

/** Every configured file's text; throws a TlsFilesError naming those that cannot be read. */
function readTexts(settings: Settings): Texts {
  const texts: Texts = {};
  const problems: Problem[] = [];
  for (const field of FILE_FIELDS) {
    const path = settings[field];
    if (path === undefined) continue;
    try {
      texts[field] = readFileSync(path, 'utf8');
    } catch (error) {
      problems.push({ field, detail: `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})` });
    }
  }
  if (problems.length > 0) throw new TlsFilesError(problems);
  return texts;
}

/** The connector for these texts; throws a TlsFilesError when they are not certificates, or not a key pair. */
function loadedOf(settings: Settings, texts: Texts, timeoutMs: number): Loaded {
  const problems: Problem[] = [];
  for (const field of ['caFile', 'certFile'] as const) {
    const text = texts[field];
    const problem = text === undefined ? undefined : certificatesProblem(text);
    if (problem !== undefined) problems.push({ field, detail: `${settings[field]} ${problem}` });
  }
  if (problems.length > 0) throw new TlsFilesError(problems);
  let secureContext: ReturnType<typeof createSecureContext>;
  try {
    secureContext = createSecureContext({ ca: texts.caFile, cert: texts.certFile, key: texts.keyFile });
  } catch (error) {
    // The certificates parsed, so it is the key: one that does not parse, or that is not the certificate's.
    const field = settings.keyFile === undefined ? 'certFile' : 'keyFile';
    throw new TlsFilesError([{ field, detail: `${settings[field]} ${keyProblem(error)}` }]);
  }
  // The name TLS asks for comes with each request (target-client.ts), so it wins over the URL's.
  return { texts, connect: buildConnector({ timeout: timeoutMs, secureContext }) };
}

/** Node takes a CA file with no certificate in it and then trusts nothing: say so instead. */
function certificatesProblem(text: string): string | undefined {
  const blocks = text.match(CERTIFICATE) ?? [];
  if (blocks.length === 0) return 'holds no PEM certificate';
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      return 'holds a certificate that does not parse';
    }
  }
  return undefined;
}

function keyProblem(error: unknown): string {
  const code = (error as { code?: string }).code ?? '';
  if (code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH') return 'is not the private key of certFile';
  return `is not a usable PEM private key (${code || (error as Error).message})`;
}
