#!/usr/bin/env bash
# Slows the broker: every AMQP frame from RabbitMQ to the sidecars waits MS
# milliseconds. Watch publish latency (to the confirm) and push latency climb
# on the Outrigger dashboard, and the queue depth grow if consumers fall behind.
#   scripts/chaos/broker-latency.sh MS [JITTER_MS]      e.g. 500 100
# Undo: scripts/chaos/reset.sh
source "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 MS [JITTER_MS]" >&2; exit 2; }
set_latency rabbitmq "$1" "${2:-0}"
