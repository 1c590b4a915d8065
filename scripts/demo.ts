// `make demo`: runs the demo services, each beside its own Outrigger sidecar
// (`outrigger run`, the local equivalent of a pod), against the local RabbitMQ
// and, for the calibration service and its outbox relay, PostgreSQL; and,
// first, the external weather API ingestion calls through its sidecar, as a
// plain process (a third party has no sidecar).
// Prints what happens, one line per event, prefixed by who said it.
// Ctrl-C (or --for DURATION) stops everything cleanly.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url).pathname;
const cli = `${root}sidecar/bin/outrigger`;

interface Service {
  name: string;
  /** Folder under services/, holding outrigger.yaml (unless `plain`). */
  dir: string;
  /** A plain process, without a sidecar: `command` runs as it is. */
  plain?: boolean;
  command: string[];
  color: number;
  /** Environment for the app and its sidecar, beside the demo's own. */
  env?: Record<string, string>;
  /** Its readiness (a sidecar's: its queues exist then), waited for before the next service starts. */
  ready?: string;
}

/**
 * The calibration service's database, and its sidecar's outbox relay's: the
 * local one (its outrigger.yaml's outbox.url) unless DATABASE_URL says otherwise.
 */
const database = process.env.DATABASE_URL ?? 'postgres://outrigger:outrigger@127.0.0.1:5432/outrigger';

const SERVICES: Service[] = [
  {
    name: 'weather-api',
    dir: 'services/weather-api',
    plain: true,
    command: ['python3', '-u', 'main.py'],
    color: 32,
    // Ingestion's first readings call it.
    ready: 'http://127.0.0.1:8090/healthz',
  },
  {
    name: 'ingestion',
    dir: 'services/ingestion',
    command: [process.execPath, 'src/main.ts'],
    color: 36,
    // Its subscriptions' queues must exist before the others publish: else their first messages find no queue.
    ready: 'http://127.0.0.1:9465/readyz',
  },
  { name: 'sensor-sim', dir: 'services/sensor-sim', command: ['python3', '-u', 'main.py'], color: 33 },
  {
    name: 'calibration',
    dir: 'services/calibration',
    command: ['bash', 'main.sh'],
    color: 35,
    env: { DATABASE_URL: database, OUTRIGGER_OUTBOX_URL: database },
  },
];

const { values } = parseArgs({ options: { for: { type: 'string' } } });
const runFor = values.for === undefined ? undefined : Number(/^(\d+)s$/.exec(values.for)?.[1] ?? Number.NaN) * 1000;
if (Number.isNaN(runFor)) {
  console.error('demo: --for expects seconds, e.g. --for 20s');
  process.exit(2);
}

const colored = process.stdout.isTTY;
const paint = (color: number, text: string) => (colored ? `\x1b[${color}m${text}\x1b[0m` : text);
const width = Math.max(...SERVICES.map((service) => service.name.length)) + ' sidecar'.length;

/** A sidecar JSON log line as one readable line; anything else as it is. */
function render(line: string): { text: string; fromSidecar: boolean; level: string } {
  if (!line.startsWith('{')) return { text: line, fromSidecar: false, level: 'info' };
  try {
    const { level, msg, time: _time, pid: _pid, ...fields } = JSON.parse(line) as Record<string, unknown>;
    const details = Object.entries(fields)
      .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
      .join(' ');
    return {
      text: `${msg as string}${details === '' ? '' : `  ${details}`}`,
      fromSidecar: true,
      level: level as string,
    };
  } catch {
    return { text: line, fromSidecar: false, level: 'info' };
  }
}

function start(service: Service): ChildProcess {
  const [file = '', ...args] = service.plain
    ? service.command
    : [cli, 'run', '--config', 'outrigger.yaml', '--', ...service.command];
  const child = spawn(file, args, {
    cwd: `${root}${service.dir}`,
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own: Ctrl-C (or `timeout`) signals the whole foreground group, and a second
    // signal, the demo's SIGTERM below, would make `outrigger run` exit at once, without a clean stop.
    detached: true,
    env: { ...process.env, OUTRIGGER_LOG_LEVEL: process.env.OUTRIGGER_LOG_LEVEL ?? 'info', ...service.env },
  });
  // A command that cannot start (python3 not on PATH): said, as `outrigger run` says it, not thrown.
  child.on('error', (error) => {
    process.stdout.write(
      `${paint(service.color, service.name.padEnd(width))} | ${paint(31, `cannot start: ${error.message}`)}\n`,
    );
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream as NodeJS.ReadableStream }).on('line', (line) => {
      const { text, fromSidecar, level } = render(line);
      const who = (fromSidecar ? `${service.name} sidecar` : service.name).padEnd(width);
      const body = level === 'warn' || level === 'error' || level === 'fatal' ? paint(31, `${level}: ${text}`) : text;
      process.stdout.write(`${paint(service.color, who)} | ${body}\n`);
    });
  }
  return child;
}

/** Why PostgreSQL cannot be used (psql's own words), or undefined when it can. */
function databaseProblem(url: string): string | undefined {
  const check = spawnSync('psql', ['-X', '-A', '-t', '-c', 'SELECT 1', url], {
    encoding: 'utf8',
    env: { ...process.env, PGCONNECT_TIMEOUT: '5' },
  });
  if ((check.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
    return 'psql is not on PATH (Debian: postgresql-client; scripts/bootstrap.sh services installs PostgreSQL with it)';
  if (check.error !== undefined) return `psql: ${check.error.message}`;
  return check.status === 0 ? undefined : check.stderr.trim() || `psql exited with ${check.status}`;
}

const problem = databaseProblem(database);
if (problem !== undefined) {
  const where = database.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1@');
  console.error(`demo: cannot use PostgreSQL at ${where}, which the calibration service and its outbox relay need:`);
  console.error(`  ${problem.replaceAll('\n', '\n  ')}`);
  console.error(
    '  `make demo` installs and starts it first (scripts/bootstrap.sh services, as root), or set DATABASE_URL.',
  );
  process.exit(1);
}

const withSidecars = SERVICES.filter((service) => !service.plain).map((service) => service.name);
console.log(`Outrigger demo: ${withSidecars.join(', ')}, each with its own sidecar, and weather-api without one.`);
console.log('  sensor-sim publishes a reading a second to sensor.readings through http://127.0.0.1:3600');
console.log('  ingestion subscribes to sensor.readings; its sidecar pushes each reading to POST /events/readings');
console.log('    for each, it asks weather-api (127.0.0.1:8090, no sidecar) through its own sidecar for the weather;');
console.log('    every 4th request answers 503: the sidecar retries it, and the app gets the 200 (2 attempts)');
console.log('  calibration (bash + psql) commits a calibration and its outbox row in one transaction every 3 s;');
console.log(
  '    its sidecar relays each committed row to sensor.calibrations, pushed to ingestion at /events/calibrations;',
);
console.log('    every 5th, from the 2nd, rolls back: that one is never published');
console.log('  try: curl -s 127.0.0.1:9465/readyz   curl -s 127.0.0.1:9464/metrics | grep outrigger_');
console.log('       curl -si 127.0.0.1:3601/v1/outbound/weather/v1/conditions/sensor-1');
console.log(
  `       curl -s 127.0.0.1:9466/metrics | grep outrigger_outbox_   ` +
    `psql ${process.env.DATABASE_URL === undefined ? database : '"$DATABASE_URL"'} -c 'table calibrations'`,
);
console.log(runFor === undefined ? '  Ctrl-C stops everything.\n' : `  stopping by itself after ${runFor / 1000} s.\n`);

/** Polls `url` until it answers 200, for at most 20 s. */
async function untilReady(url: string): Promise<void> {
  for (let tries = 0; tries < 200; tries++) {
    const ok = await fetch(url).then(
      (response) => response.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  console.error(`demo: ${url} was not ready after 20 s; starting the others anyway`);
}

const children: ChildProcess[] = [];
const exits: Promise<[number | null, NodeJS.Signals | null]>[] = [];
let stopping = false;

/** Each service's whole process group (the app and its sidecar), at once: a second Ctrl-C, or the demo exiting. */
function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
process.on('exit', killAll);

async function stopAll(code: number): Promise<never> {
  if (stopping) {
    console.log('demo: stopping at once');
    killAll();
  } else {
    stopping = true;
    console.log('\ndemo: stopping (apps first, then their sidecars, then weather-api); Ctrl-C again stops at once');
    // The plain processes last: the apps' calls still in flight find them up.
    const plain = (index: number) => SERVICES[index]?.plain === true;
    const stop = (last: boolean) => {
      for (const [index, child] of children.entries())
        if (plain(index) === last && child.exitCode === null) child.kill('SIGTERM');
    };
    stop(false);
    await Promise.all(exits.filter((_, index) => !plain(index)));
    stop(true);
  }
  const results = await Promise.all(exits);
  const unclean = results.filter(([exitCode]) => exitCode !== 0).length;
  console.log(unclean === 0 ? 'demo: stopped cleanly' : `demo: ${unclean} process(es) exited with an error`);
  process.exit(code === 0 && unclean === 0 ? 0 : 1);
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stopAll(0));
for (const [index, service] of SERVICES.entries()) {
  if (stopping) break;
  const child = start(service);
  children.push(child);
  // 'close', not 'exit': a command that could not start (ENOENT) closes without exiting.
  const exit = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  exits.push(exit);
  void exit.then(([code]) => {
    if (!stopping) {
      console.error(`demo: ${SERVICES[index]?.name} exited early (code ${code}); stopping the others`);
      void stopAll(1);
    }
  });
  if (service.ready !== undefined) await untilReady(service.ready);
}
if (runFor !== undefined) setTimeout(() => void stopAll(0), runFor).unref();
