#!/usr/bin/env bash
# Slows the database: every response from PostgreSQL to the apps waits MS
# milliseconds (the apps' DATABASE_URL goes through Toxiproxy). A slow database
# makes a slow consumer: push latency rises, deliveries in flight reach the
# subscription's concurrency, and the queue backs up.
#   scripts/chaos/postgres-latency.sh MS [JITTER_MS]     e.g. 500
# Undo: scripts/chaos/reset.sh
source "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 MS [JITTER_MS]" >&2; exit 2; }
set_latency postgres "$1" "${2:-0}"
