#!/usr/bin/env bash
# Slows the weather API: every answer from it to ingestion's sidecar (its
# outbound target "weather") waits MS milliseconds. Under the target's
# per-attempt timeout (500 ms) the calls only slow down: watch _Outbound
# latency_ climb. Above it every attempt times out (a timed-out attempt is not
# retried: `timeout` is not in the default retry.on) and the call answers 504
# UPSTREAM_TIMEOUT; five failed attempts in a row open the circuit, and the
# calls are then answered 503 CIRCUIT_OPEN at once, unsent (_Circuit state_
# open, ingestion logs "weather unavailable"). After scripts/chaos/reset.sh the
# half-open trial, 5 s after the circuit opened, closes it.
#   scripts/chaos/weather-latency.sh MS [JITTER_MS]      e.g. 1000, or 300 200
# Undo: scripts/chaos/reset.sh
source "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 MS [JITTER_MS]" >&2; exit 2; }
set_latency weather "$1" "${2:-0}"
