// A target's TLS settings (`tls`: caFile, certFile, keyFile, serverName), as
// the connector its pool makes new connections with. The files are read at
// startup: one missing or unusable is a configuration error naming the field,
// as for secret headers. After that they are Refreshed when a connection is
// made: a rotated Kubernetes secret (cert-manager renewing a client
// certificate, say) is used for the next connections without a restart;
// connections already open keep what they were made with. Files that cannot be
// read or used leave the last good set in use, with a warning.
import { readFileSync } from 'node:fs';
import { buildConnector } from 'undici';
import type { Target } from '../config/schema.ts';
import { checkPem, type PemProblem } from '../tls/key-pair.ts';
import { Refreshed } from './refreshed.ts';

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
  const { pem, problems } = checkPem({ ca: texts.caFile, cert: texts.certFile, key: texts.keyFile });
  if (problems !== undefined) throw new TlsFilesError(problems.map((problem) => problemOf(settings, problem)));
  // The name TLS asks for comes with each request (target-client.ts), so it wins over the URL's.
  return { texts, connect: buildConnector({ timeout: timeoutMs, secureContext: pem.context }) };
}

/** A problem checkPem found, named as the target's settings name the file. */
function problemOf(settings: Settings, problem: PemProblem): Problem {
  if (problem.file !== 'key') {
    const field = problem.file === 'ca' ? 'caFile' : 'certFile';
    return { field, detail: `${settings[field]} ${problem.detail}` };
  }
  const field = settings.keyFile === undefined ? 'certFile' : 'keyFile';
  const { mismatch, error } = problem;
  const detail = mismatch
    ? 'is not the private key of certFile'
    : `is not a usable PEM private key (${error.code || error.message})`;
  return { field, detail: `${settings[field]} ${detail}` };
}
