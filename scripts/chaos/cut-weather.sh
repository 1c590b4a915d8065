#!/usr/bin/env bash
# Cuts the weather API off: Toxiproxy drops every connection to it and refuses
# new ones, as if the third party's host went away. Ingestion's sidecar retries
# each refused attempt (connect-error is in the default retry.on: _Outbound
# attempts by outcome_ shows connect_error); five failed attempts in a row open
# the target's circuit, and calls are then answered 503 CIRCUIT_OPEN at once,
# unsent (_Circuit state_ open, _Refused without sending_ up, ingestion logs
# "weather unavailable"). The readings are processed all the same. After
# scripts/chaos/reset.sh the half-open trial, 5 s after the circuit opened,
# closes it.
#   scripts/chaos/cut-weather.sh
source "$(dirname "$0")/lib.sh"
set_proxy weather disable
echo "chaos: weather: connections dropped and refused; scripts/chaos/reset.sh restores them"
