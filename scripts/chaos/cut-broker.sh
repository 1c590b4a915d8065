#!/usr/bin/env bash
# Cuts the broker off: Toxiproxy drops every AMQP connection and refuses new
# ones, as if RabbitMQ's host went away. Watch "Broker connected" drop, publishes
# answer 503 BROKER_UNAVAILABLE, readiness fail, and, after
# scripts/chaos/reset.sh, the sidecars reconnect by themselves and the messages
# waiting in RabbitMQ are delivered.
#   scripts/chaos/cut-broker.sh
source "$(dirname "$0")/lib.sh"
set_proxy rabbitmq disable
echo "chaos: rabbitmq: connections dropped and refused; scripts/chaos/reset.sh restores them"
