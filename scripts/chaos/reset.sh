#!/usr/bin/env bash
# Undoes every chaos script: every proxy enabled, every toxic removed.
#   scripts/chaos/reset.sh
source "$(dirname "$0")/lib.sh"
for name in $(proxy_names); do
  set_proxy "$name" enable
  for toxic in $(toxiproxy inspect "$name" | awk -F'\t' '$2 ~ /^type=/ { print $1 }'); do
    toxiproxy toxic remove -n "$toxic" "$name" >/dev/null
  done
done
echo "chaos: every proxy enabled, every toxic removed"
