#!/usr/bin/env bash
# The one entry point that makes a machine ready for this project. Every make
# target runs it first. Idempotent: a second run costs about a second.
#   scripts/bootstrap.sh [node] [deps] [services] [tools]   (default: node deps services)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(node deps services)

# npm dependencies, installed only when package.json or package-lock.json
# changed since the last install; then tap rebuilds its test class for the
# plugins package.json names (it runs .ts files on Node, without ts-node).
# `npm install` rather than `npm ci`: the lock can only record the platform
# packages the registry serves here (e.g. Biome's linux-x64 binary, not its
# other platforms'), and `npm ci` refuses a lock without them. With the lock
# present, `npm install` installs exactly the locked versions and leaves it as it is.
deps() {
  local stamp=.tools/stamps/npm-ci want
  want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
  if [ -d node_modules ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "bootstrap: installing npm dependencies"
  npm install --no-audit --no-fund --loglevel=error
  node_modules/.bin/tap build >/dev/null
  mkdir -p "$(dirname "$stamp")"
  echo "$want" >"$stamp"
}

for part in "${parts[@]}"; do
  case "$part" in
    node) bash scripts/bootstrap/node.sh ;;
    deps) deps ;;
    services) bash scripts/bootstrap/services.sh ;;
    tools) bash scripts/bootstrap/tools.sh ;;
    *) echo "bootstrap: unknown part '$part' (node, deps, services, tools)" >&2; exit 2 ;;
  esac
done
