#!/usr/bin/env bash
# Throwaway RabbitMQ nodes for tests that stop and restart a broker
# (rabbitmqctl -n NAME@localhost stop_app / start_app) without disturbing the
# shared one on 127.0.0.1:5672. Each node has its own name, AMQP port, Erlang
# distribution port (PORT + 20000), config, data and logs, and no plugins.
#   rabbitmq-node.sh start  NAME PORT   returns once the node answers AMQP
#   rabbitmq-node.sh stop   NAME [PORT] kills it and deletes its directory
#   rabbitmq-node.sh status NAME [PORT] exit 0 running, 1 app stopped, 3 down
# Runs as root. The node runs as the rabbitmq user, as the shared node does,
# so both use /var/lib/rabbitmq/.erlang.cookie and plain `rabbitmqctl -n`
# (which switches to that user) reaches it. Its directory is
# /tmp/outrigger-rabbitmq/NAME, not in the repo: the rabbitmq user must be able
# to enter it, and node names are machine-wide anyway.
set -euo pipefail

die() { echo "rabbitmq-node: $*" >&2; exit 1; }
if [ $# -lt 2 ] || [ $# -gt 3 ]; then die "usage: $0 start|stop|status NAME PORT"; fi
cmd=$1 name=$2 port=${3:-}
[[ $name =~ ^[A-Za-z0-9_-]+$ ]] || die "NAME must be letters, digits, _ or -"
[ "$(id -u)" = 0 ] || die "must run as root (the node runs as the rabbitmq user)"

# epmd (:4369) is spawned by the first Erlang program that needs one and
# listens on every interface unless this is set at that moment.
export ERL_EPMD_ADDRESS=127.0.0.1
ctl=/usr/sbin/rabbitmqctl
node=$name@localhost
dir=/tmp/outrigger-rabbitmq/$name
[ -n "$port" ] || port=$(cat "$dir/port" 2>/dev/null) || true

registered() { /usr/bin/epmd -names 2>/dev/null | grep -q "^name $name at port "; }

# The broker answers the AMQP 0-9-1 protocol header with a Connection.Start
# frame, whose first byte is the frame type 1.
amqp_ok() {
  # shellcheck disable=SC2016 # $1 is expanded by the inner bash
  [ -n "$port" ] && timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "AMQP\0\0\11\1" >&3 && head -c1 <&3' \
    _ "$port" 2>/dev/null | od -An -tx1 | grep -q 01
}

# wait_amqp SECONDS: bounded; by then `rabbitmqctl wait` has seen the app up.
wait_amqp() {
  local deadline=$((SECONDS + $1))
  until amqp_ok; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# ours PID: true when PID is this node's VM (its environment names our
# directory), so a stale pid file never gets another process killed.
ours() { tr '\0' '\n' 2>/dev/null <"/proc/$1/environ" | grep -qx "RABBITMQ_MNESIA_BASE=$dir/mnesia"; }

kill_vm() {
  local pid deadline
  pid=$(cat "$dir/pid" 2>/dev/null) || true
  if [ -n "$pid" ] && ours "$pid"; then
    # Its data is thrown away, so a graceful stop (2-3.5 s) buys nothing.
    kill -KILL "$pid" 2>/dev/null || true
    timeout 10 tail -s 0.1 --pid="$pid" -f /dev/null || die "process $pid of $node does not exit"
  elif registered; then
    # No pid file (its directory was removed by hand): ask it to stop.
    timeout 60 "$ctl" -q -n "$node" stop >/dev/null 2>&1 || true
  fi
  # epmd drops the name when it sees the VM's connection close.
  deadline=$((SECONDS + 10))
  while registered; do
    [ "$SECONDS" -lt "$deadline" ] || die "$node is still registered with epmd 10 s after stop"
    sleep 0.1
  done
}

# A failed start leaves no VM behind (after a failed boot it takes seconds to
# exit), only the directory with the log; the next start replaces it.
fail_start() {
  local log="$dir/log/$node.log"
  { grep -m 3 '\[error\].*reason: ' "$log" || tail -n 5 "$log"; } >&2 2>/dev/null || true
  kill_vm
  die "$*; log: $log"
}

start() {
  if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1024 ] || [ "$port" -gt 45535 ]; then
    die "PORT must be 1024..45535 (the distribution port is PORT + 20000)"
  fi
  if registered; then
    amqp_ok && return 0
    # Left with its app stopped (a test's stop_app): start the app again.
    timeout 90 "$ctl" -q -n "$node" start_app >/dev/null 2>&1 || fail_start "rabbitmqctl start_app on $node failed"
    timeout 100 "$ctl" -q -n "$node" await_startup --timeout 90 >/dev/null 2>&1 ||
      fail_start "$node did not start its app within 90 s"
    wait_amqp 10 || fail_start "$node is up but does not answer AMQP on 127.0.0.1:$port"
    return 0
  fi
  local dist=$((port + 20000)) p
  for p in "$port" "$dist"; do
    ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || die "port $p on 127.0.0.1 is already in use"
  done
  rm -rf "$dir"
  mkdir -p "$dir/mnesia" "$dir/log"
  echo "$port" >"$dir/port"
  printf '%s\n' "listeners.tcp.default = 127.0.0.1:$port" \
    "distribution.listener.interface = 127.0.0.1" \
    "distribution.listener.port_range.min = $dist" \
    "distribution.listener.port_range.max = $dist" >"$dir/rabbitmq.conf"
  echo '[].' >"$dir/enabled_plugins"
  : >"$dir/rabbitmq-env.conf" # read instead of /etc/rabbitmq/rabbitmq-env.conf
  chown -R rabbitmq:rabbitmq "$dir"
  chmod 755 /tmp/outrigger-rabbitmq

  # The wrapper switches to the rabbitmq user and keeps these variables.
  # advanced.config does not exist: it stands in for /etc/rabbitmq's.
  RABBITMQ_NODENAME=$node RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$port \
    RABBITMQ_DIST_PORT=$dist RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf \
    RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf \
    RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins RABBITMQ_MNESIA_BASE=$dir/mnesia \
    RABBITMQ_LOG_BASE=$dir/log RABBITMQ_PID_FILE=$dir/pid \
    /usr/sbin/rabbitmq-server -detached
  # Waits for the pid file, then for the app; returns early if the boot fails.
  timeout 100 "$ctl" -q -n "$node" wait "$dir/pid" --timeout 90 >/dev/null 2>&1 ||
    fail_start "$node did not start (its boot failed, or 90 s passed)"
  wait_amqp 10 || fail_start "$node started but does not answer AMQP on 127.0.0.1:$port"
}

stop() {
  kill_vm
  rm -rf "$dir"
}

status() {
  if amqp_ok; then
    echo "$node: running, AMQP on 127.0.0.1:$port"
  elif registered; then
    echo "$node: up, app stopped (no AMQP on 127.0.0.1:${port:-?})"
    return 1
  else
    echo "$node: not running"
    return 3
  fi
}

case "$cmd" in
  start | stop | status) "$cmd" ;;
  *) die "usage: $0 start|stop|status NAME PORT" ;;
esac
