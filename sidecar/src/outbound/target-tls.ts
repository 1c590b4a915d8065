// A target's TLS settings (`tls`: caFile, certFile, keyFile, serverName), as
// the connector its pool makes new connections with. The files are read at
// startup: one missing or unusable is a configuration error naming the field,
// as for secret headers. Later, a new connection reads them again once they
// are older than FILE_TTL_MS, so a rotated Kubernetes secret (cert-manager
// renewing a client certificate, say) is used without a restart; connections
// already open keep what they were made with. A rotated file that cannot be
// read or parsed leaves the last good set in use, with a warning.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { buildConnector } from 'undici';
import type { Target } from '../config/schema.ts';

const FILE_TTL_MS = 2_000;
const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

type Settings = NonNullable<Target['tls']>;
type FileField = 'caFile' | 'certFile' | 'keyFile';
const FILE_FIELDS: FileField[] = ['caFile', 'certFile', 'keyFile'];

/** The files' contents, and the secure context made of them. */
interface Loaded {
  texts: Partial<Record<FileField, string>>;
  context: SecureContext;
}

/** What is wrong with one of the files. */
interface Problem {
  field: FileField;
  detail: string;
}

export class TargetTls {
  private readonly settings: Settings;
  private readonly timeoutMs: number;
  private readonly onReadError: (field: string, problem: string) => void;
  private loaded: Loaded;
  private connect: buildConnector.connector;
  private readAt: number;

  private constructor(
    settings: Settings,
    timeoutMs: number,
    loaded: Loaded,
    onReadError: (field: string, problem: string) => void,
  ) {
    this.settings = settings;
    this.timeoutMs = timeoutMs;
    this.onReadError = onReadError;
    this.loaded = loaded;
    this.connect = this.connectorOf(loaded);
    this.readAt = Date.now();
  }

  /** Reads and checks the files now; or lists what is wrong with each, naming its field. Undefined without `tls`. */
  static resolve(
    target: Target,
    /** Where the target is written, for the messages: `targets[2]`, or `spec` for a resource. */
    field: string,
    onReadError: (field: string, problem: string) => void = () => {},
  ): { tls?: TargetTls; problems?: never } | { tls?: never; problems: string[] } {
    if (target.tls === undefined) return {};
    const loaded = load(target.tls);
    if ('problems' in loaded) {
      return { problems: loaded.problems.map((problem) => `${field}.tls.${problem.field}: ${problem.detail}`) };
    }
    return { tls: new TargetTls(target.tls, target.timeout, loaded, onReadError) };
  }

  /** What the pool's `connect` option is: a connection with the current files. */
  readonly connector: buildConnector.connector = (options, callback) => {
    const now = Date.now();
    if (now - this.readAt >= FILE_TTL_MS) this.reread(now);
    return this.connect(options, callback);
  };

  /** The name each request asks the connection for (undici would otherwise derive it from the host header). */
  get serverName(): string | undefined {
    return this.settings.serverName;
  }

  private reread(now: number): void {
    this.readAt = now;
    const loaded = load(this.settings);
    if ('problems' in loaded) {
      for (const problem of loaded.problems) this.onReadError(`tls.${problem.field}`, problem.detail);
      return;
    }
    if (FILE_FIELDS.every((name) => loaded.texts[name] === this.loaded.texts[name])) return;
    this.loaded = loaded;
    this.connect = this.connectorOf(loaded);
  }

  private connectorOf(loaded: Loaded): buildConnector.connector {
    return buildConnector({
      timeout: this.timeoutMs,
      secureContext: loaded.context,
      ...(this.settings.serverName === undefined ? {} : { servername: this.settings.serverName }),
    });
  }
}

/** The files read and parsed, or what is wrong with each. */
function load(settings: Settings): Loaded | { problems: Problem[] } {
  const texts: Loaded['texts'] = {};
  const problems: Problem[] = [];
  for (const name of FILE_FIELDS) {
    const path = settings[name];
    if (path === undefined) continue;
    try {
      texts[name] = readFileSync(path, 'utf8');
    } catch (error) {
      problems.push({
        field: name,
        detail: `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      });
      continue;
    }
    const problem = name === 'keyFile' ? undefined : certificatesProblem(texts[name]);
    if (problem !== undefined) problems.push({ field: name, detail: `${path} ${problem}` });
  }
  if (problems.length > 0) return { problems };
  try {
    const context = createSecureContext({ ca: texts.caFile, cert: texts.certFile, key: texts.keyFile });
    return { texts, context };
  } catch (error) {
    // The certificates parsed: a key that does not, or that is not the certificate's.
    return { problems: [{ field: 'keyFile', detail: `${settings.keyFile} ${keyProblem(error)}` }] };
  }
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
