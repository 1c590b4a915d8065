# Sourced by the chaos scripts. They drive the sandbox's Toxiproxy with its own
# CLI, run inside its pod (`kubectl exec`): its API listens on the pod's
# loopback only, so nothing else in the cluster can add toxics.
#   SANDBOX_NAMESPACE  default outrigger-sandbox
#   SANDBOX_RELEASE    default sandbox (the Deployment is <release>-toxiproxy)
#   KUBE_CONTEXT       default kubectl's current context
#   TOXIPROXY_CLI      a local toxiproxy-cli instead of kubectl exec (it reads
#                      TOXIPROXY_URL); how the tests run these scripts
set -euo pipefail

namespace=${SANDBOX_NAMESPACE:-outrigger-sandbox}
release=${SANDBOX_RELEASE:-sandbox}

toxiproxy() {
  if [ -n "${TOXIPROXY_CLI:-}" ]; then
    "$TOXIPROXY_CLI" "$@"
  else
    kubectl ${KUBE_CONTEXT:+--context "$KUBE_CONTEXT"} -n "$namespace" \
      exec "deploy/$release-toxiproxy" -c toxiproxy -- /toxiproxy-cli "$@"
  fi
}

# The proxies: "rabbitmq" (AMQP, what OUTRIGGER_BROKER_URL points at), "postgres"
# and, with the demo's weather API, "weather" (ingestion's outbound target).
proxy_names() { toxiproxy list | awk -F'\t' 'NF >= 4 { print $1 }'; }
proxy_state() { toxiproxy list | awk -F'\t' -v name="$1" '$1 == name { print $4 }'; }

# enable|disable a proxy; idempotent (the CLI itself only toggles).
set_proxy() {
  local name=$1 want=$2 state
  state=$(proxy_state "$name")
  [ -n "$state" ] || { echo "chaos: no proxy named $name in $namespace/$release-toxiproxy" >&2; exit 1; }
  if [ "$state" != "${want}d" ]; then toxiproxy toggle "$name" >/dev/null; fi
}

# Adds (or replaces) the latency toxic on one proxy: every packet from the
# server to the client waits MS milliseconds (+/- JITTER).
set_latency() {
  local name=$1 ms=$2 jitter=${3:-0}
  case "$ms$jitter" in *[!0-9]*) echo "chaos: latency and jitter are whole milliseconds" >&2; exit 2 ;; esac
  toxiproxy toxic remove -n latency "$name" >/dev/null 2>&1 || true
  toxiproxy toxic add -t latency -n latency -a "latency=$ms" -a "jitter=$jitter" "$name" >/dev/null
  echo "chaos: $name: +${ms} ms (jitter ${jitter} ms) on every response; scripts/chaos/reset.sh removes it"
}
