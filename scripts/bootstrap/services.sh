#!/usr/bin/env bash
# Ensures the shared test services run on 127.0.0.1 only:
#   RabbitMQ   amqp://guest:guest@127.0.0.1:5672
#   PostgreSQL postgres://outrigger:outrigger@127.0.0.1:5432/outrigger
#              (and outrigger_limited:outrigger_limited, a role without rights, for tests)
# and that tinyproxy is installed (never started here: the tests run their own).
# Debian packages are installed only when missing and only what is down is
# started, so a run with everything up takes about half a second and prints
# nothing. `services.sh stop` stops both (for developers; tests never need it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/scripts/versions.env"

# epmd (Erlang's port mapper, :4369) is spawned by the first Erlang program
# that needs one, rabbitmq-diagnostics included, and listens on every
# interface unless this is set at that moment.
export ERL_EPMD_ADDRESS=127.0.0.1
ctl=/usr/sbin/rabbitmqctl diag=/usr/sbin/rabbitmq-diagnostics
# Debian's broker writes no pid file unless asked; with one, `rabbitmqctl wait`
# follows the boot and `rabbitmqctl stop` waits for the VM to exit.
rabbit_pid=/var/lib/rabbitmq/outrigger-rabbit.pid
rabbit_conf=/etc/rabbitmq/rabbitmq.conf
pg_conf=/etc/postgresql/$POSTGRES_MAJOR/main/conf.d/outrigger.conf
marker="# Written by outrigger's scripts/bootstrap/services.sh; edits are overwritten."

die() { echo "services: $*" >&2; exit 1; }

# rabbit_fail MESSAGE: the broker's own reason (the CLI's error text is a
# generic page), from the latest lines of its log.
rabbit_fail() {
  local log
  log=/var/log/rabbitmq/rabbit@$(hostname -s).log
  tail -n 500 "$log" 2>/dev/null | grep '\[error\].*reason: ' | tail -n 3 >&2 || true
  die "$*; log: $log"
}

# managed FILE LINE...: writes FILE unless it is someone else's (no marker);
# succeeds only when it changed the file.
managed() {
  local file=$1 text
  shift
  text=$(printf '%s\n' "$marker" "$@")
  if [ -e "$file" ]; then
    [ "$(head -n1 "$file")" = "$marker" ] || return 1
    [ "$(cat "$file")" != "$text" ] || return 1
  fi
  mkdir -p "$(dirname "$file")"
  printf '%s\n' "$text" >"$file"
}

# Succeeds when it changed the file. AMQP and the Erlang distribution port
# (25672) on loopback only.
rabbit_config() {
  managed "$rabbit_conf" "listeners.tcp.default = 127.0.0.1:5672" \
    "distribution.listener.interface = 127.0.0.1"
}

rabbit_stop() {
  local deadline=$((SECONDS + 30))
  # Given the pid file, stop also waits for the VM to exit.
  if [ -s "$rabbit_pid" ]; then
    timeout 90 "$ctl" -q stop "$rabbit_pid" >/dev/null || die "rabbitmqctl stop failed"
  else
    timeout 90 "$ctl" -q stop >/dev/null || die "rabbitmqctl stop failed"
  fi
  # Without one, the VM exits a moment later; a new one must not race it for
  # the node name.
  while rabbit_vm_up; do
    [ "$SECONDS" -lt "$deadline" ] || die "RabbitMQ still registered with epmd 30 s after stop"
    sleep 0.2
  done
}

install_missing() {
  local missing=() log
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
  [ -x "/usr/lib/postgresql/$POSTGRES_MAJOR/bin/postgres" ] || missing+=(postgresql "postgresql-$POSTGRES_MAJOR")
  # The egress proxy tests' forward proxy, run by each test: tinyproxy-bin is
  # the program alone, without the `tinyproxy` package's system service.
  [ -x /usr/bin/tinyproxy ] || missing+=(tinyproxy-bin)
  [ "${#missing[@]}" -gt 0 ] || return 0
  echo "services: installing ${missing[*]} with apt-get"
  # Before the install: where the package starts its broker (systemd), it
  # already reads the loopback-only config.
  rabbit_config || true
  log=$(mktemp)
  # The lock timeout waits out another apt run instead of failing at once.
  local apt=(apt-get -qq -o DPkg::Lock::Timeout=300)
  if ! { DEBIAN_FRONTEND=noninteractive "${apt[@]}" update &&
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "apt-get install ${missing[*]} failed (output above)"
  fi
  rm -f "$log"
}

rabbit_vm_up() { /usr/bin/epmd -names 2>/dev/null | grep -q '^name rabbit at port '; }

ensure_rabbitmq() {
  # epmd's list answers "is the VM up" in milliseconds; the CLI takes ~0.4 s a
  # call, and ~1 s to find out that a node is down.
  if rabbit_config && rabbit_vm_up; then
    # Started before the config was written (by the package, or by hand).
    echo "services: restarting RabbitMQ to apply $rabbit_conf"
    rabbit_stop
  fi
  if rabbit_vm_up; then
    timeout 20 "$diag" -q check_running >/dev/null 2>&1 && return 0
    # The VM is up but the app is not: stopped by `stop_app` (a test that died)
    # or still booting, when start_app returns at once: await_startup covers that.
    echo "services: RabbitMQ node is up but its app is not; running rabbitmqctl start_app"
    timeout 90 "$ctl" -q start_app >/dev/null 2>&1 || rabbit_fail "rabbitmqctl start_app failed"
    timeout 100 "$ctl" -q await_startup --timeout 90 >/dev/null 2>&1 ||
      rabbit_fail "RabbitMQ's app did not start within 90 s"
    return 0
  fi
  case "$(dpkg-query -W -f '${Version}' rabbitmq-server)" in
    "$RABBITMQ_SERIES".*) ;;
    *) echo "services: warning: rabbitmq-server is not $RABBITMQ_SERIES.x (versions.env)" >&2 ;;
  esac
  [ "$(head -n1 "$rabbit_conf" 2>/dev/null)" = "$marker" ] ||
    echo "services: warning: $rabbit_conf is not ours; the broker may not be on 127.0.0.1 only" >&2
  echo "services: starting RabbitMQ on 127.0.0.1:5672"
  rm -f "$rabbit_pid"
  RABBITMQ_PID_FILE=$rabbit_pid /usr/sbin/rabbitmq-server -detached
  # Waits for the pid file, then for the app; returns early if the boot fails
  # (the VM then takes some seconds to exit).
  timeout 100 "$ctl" -q wait "$rabbit_pid" --timeout 90 >/dev/null 2>&1 ||
    rabbit_fail "RabbitMQ did not start (its boot failed, or 90 s passed)"
}

pg_online() { pg_lsclusters -h | awk -v v="$POSTGRES_MAJOR" '$1 == v && $2 == "main" && $4 == "online" { f = 1 } END { exit !f }'; }

ensure_postgres() {
  local changed=0
  if ! pg_lsclusters -h | awk -v v="$POSTGRES_MAJOR" '$1 == v && $2 == "main" { f = 1 } END { exit !f }'; then
    # The package creates this cluster unless createcluster.conf says not to.
    echo "services: creating PostgreSQL cluster $POSTGRES_MAJOR/main"
    pg_createcluster "$POSTGRES_MAJOR" main >/dev/null
  fi
  # Debian's default, 'localhost', also listens on ::1.
  managed "$pg_conf" "listen_addresses = '127.0.0.1'" && changed=1
  if [ "$changed" = 0 ] && pg_isready -q -h 127.0.0.1 -p 5432 -t 2; then
    : # up, with our config
  elif pg_online; then
    # Started before our config existed (by the package), or not on 127.0.0.1:5432.
    echo "services: restarting PostgreSQL $POSTGRES_MAJOR to listen on 127.0.0.1:5432 only"
    pg_ctlcluster "$POSTGRES_MAJOR" main restart -m fast || die "pg_ctlcluster $POSTGRES_MAJOR main restart failed"
  else
    echo "services: starting PostgreSQL $POSTGRES_MAJOR on 127.0.0.1:5432"
    pg_ctlcluster "$POSTGRES_MAJOR" main start || die "pg_ctlcluster $POSTGRES_MAJOR main start failed"
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 -t 30 ||
    die "PostgreSQL is not accepting connections on 127.0.0.1:5432 after 30 s; see /var/log/postgresql/"

  # A login per role checks role, password and database at once.
  if pg_login outrigger && pg_login outrigger_limited; then
    return 0
  fi
  echo "services: creating PostgreSQL roles 'outrigger', 'outrigger_limited' and database 'outrigger'"
  # cd /: psql as postgres warns when it cannot read the caller's directory.
  # outrigger_limited holds no rights of its own: the outbox tests grant it some on their tables, to see
  # the relay refuse a table it could not delete or park rows of ('outrigger' may not create roles).
  (cd / && runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -p 5432) >/dev/null <<'SQL' || die "creating roles/database outrigger failed"
SELECT 'CREATE ROLE outrigger' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'outrigger')\gexec
ALTER ROLE outrigger WITH LOGIN PASSWORD 'outrigger';
SELECT 'CREATE ROLE outrigger_limited' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'outrigger_limited')\gexec
ALTER ROLE outrigger_limited WITH LOGIN PASSWORD 'outrigger_limited' NOSUPERUSER NOCREATEDB NOCREATEROLE;
SELECT 'CREATE DATABASE outrigger OWNER outrigger' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'outrigger')\gexec
ALTER DATABASE outrigger OWNER TO outrigger;
SQL
}

# pg_login ROLE: logs in to database outrigger as ROLE, whose password is its name.
pg_login() {
  PGPASSWORD=$1 PGCONNECT_TIMEOUT=5 psql -XAtq -h 127.0.0.1 -p 5432 -U "$1" -d outrigger -c 'select 1' >/dev/null 2>&1
}

stop_all() {
  if rabbit_vm_up; then
    echo "services: stopping RabbitMQ"
    rabbit_stop
  fi
  if command -v pg_lsclusters >/dev/null && pg_online; then
    echo "services: stopping PostgreSQL $POSTGRES_MAJOR"
    pg_ctlcluster "$POSTGRES_MAJOR" main stop -m fast || die "pg_ctlcluster $POSTGRES_MAJOR main stop failed"
  fi
}

[ "$(id -u)" = 0 ] || die "must run as root (apt-get, and the rabbitmq and postgres users)"
# One run at a time machine-wide: two runs must never both start a broker.
# flock -o runs this script again without the lock's descriptor, which the
# daemons started here would otherwise inherit and hold for as long as they run.
lock=/run/lock/outrigger-services.lock
[ -d /run/lock ] || lock=/tmp/outrigger-services.lock
if [ "${OUTRIGGER_SERVICES_LOCKED:-}" != 1 ]; then
  rc=0
  OUTRIGGER_SERVICES_LOCKED=1 flock -o -w 300 -E 75 "$lock" "$BASH" "$0" "$@" || rc=$?
  [ "$rc" != 75 ] || die "another services.sh has held $lock for 300 s"
  exit "$rc"
fi
unset OUTRIGGER_SERVICES_LOCKED

case "${1:-start}" in
  start)
    install_missing
    ensure_rabbitmq
    ensure_postgres
    ;;
  stop) stop_all ;;
  *) die "usage: $0 [start|stop]" ;;
esac
