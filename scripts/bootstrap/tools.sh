#!/usr/bin/env bash
# Builds the pinned Go tools the tests need into .tools/bin (git-ignored):
# helm, toxiproxy-server and toxiproxy-cli. A stamp file .tools/bin/.NAME.version
# records what each was built from, so a tool already at its pin is skipped.
# The user's default Go module and build caches are used on purpose: a fresh
# clone on the same machine then only links (seconds) instead of compiling.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/scripts/versions.env"
bin="$root/.tools/bin"

if ! command -v go >/dev/null 2>&1; then
  echo "bootstrap: 'go' is not on PATH; Go >= 1.26 is needed to build helm $HELM_VERSION and toxiproxy $TOXIPROXY_VERSION" >&2
  exit 1
fi
mkdir -p "$bin"
# A second concurrent run waits here, then finds the stamps and does nothing.
exec 9>"$bin/.lock"
flock 9

# up_to_date NAME VERSION BINARY...
up_to_date() {
  local name=$1 version=$2 b
  shift 2
  [ "$(cat "$bin/.$name.version" 2>/dev/null)" = "$version" ] || return 1
  for b in "$@"; do [ -x "$bin/$b" ] || return 1; done
}

# build NAME VERSION LDFLAGS PACKAGE=BINARY...
# go install names a binary after its package directory (cmd/server -> server),
# so it installs into a scratch GOBIN and each binary is renamed into place.
# The stamp is written last: an interrupted build is redone next time.
# Explicit `|| return`: it runs as an `if` condition, where set -e is off.
build() {
  local name=$1 version=$2 ldflags=$3 spec pkg pkgs=()
  shift 3
  tmp=$(mktemp -d "$bin/.build-$name.XXXXXX") || return
  trap 'rm -rf "$tmp"' EXIT
  for spec in "$@"; do pkgs+=("${spec%%=*}@$version"); done
  # CGO off: static binaries, as upstream releases them, and no C compiler needed.
  GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" "${pkgs[@]}" || return
  for spec in "$@"; do
    pkg=${spec%%=*}
    mv -f "$tmp/${pkg##*/}" "$bin/${spec#*=}" || return
  done
  echo "$version" >"$bin/.$name.version"
}

# Release builds stamp the version and the Kubernetes version helm assumes
# (.Capabilities.KubeVersion, `helm lint`) from its client-go; without these
# flags helm reports v3.22+unreleased and Kubernetes v1.20.
helm_ldflags() {
  local gomod client_go minor
  gomod=$(go list -m -f '{{.GoMod}}' "helm.sh/helm/v3@$HELM_VERSION")
  client_go=$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$gomod")  # v0.MINOR.PATCH
  minor=$(echo "$client_go" | cut -d. -f2)
  [ -n "$minor" ] || { echo "bootstrap: no k8s.io/client-go version in $gomod" >&2; return 1; }
  local v=helm.sh/helm/v3
  echo "-s -w -X $v/internal/version.version=$HELM_VERSION -X $v/internal/version.metadata=" \
    "-X $v/pkg/lint/rules.k8sVersionMajor=1 -X $v/pkg/lint/rules.k8sVersionMinor=$minor" \
    "-X $v/pkg/chartutil.k8sVersionMajor=1 -X $v/pkg/chartutil.k8sVersionMinor=$minor"
}

# One build at a time: on 2 cores running both at once was no faster cold
# (105 s either way; compiling already uses both cores).
failed=0
run() {
  local name=$1 version=$2 log="$bin/.build-$1.log"
  echo "bootstrap: building $name $version into .tools/bin"
  # go prints a line per module it downloads: shown only if the build fails.
  if ( build "$@" ) >"$log" 2>&1; then
    rm -f "$log"
  else
    cat "$log" >&2
    echo "bootstrap: building $name $version failed (go output above, kept in ${log#"$root"/})" >&2
    failed=1
  fi
}

if ! up_to_date helm "$HELM_VERSION" helm; then
  ldflags=$(helm_ldflags)
  run helm "$HELM_VERSION" "$ldflags" helm.sh/helm/v3/cmd/helm=helm
fi
if ! up_to_date toxiproxy "$TOXIPROXY_VERSION" toxiproxy-server toxiproxy-cli; then
  run toxiproxy "$TOXIPROXY_VERSION" "-s -w -X github.com/Shopify/toxiproxy/v2.Version=${TOXIPROXY_VERSION#v}" \
    github.com/Shopify/toxiproxy/v2/cmd/server=toxiproxy-server \
    github.com/Shopify/toxiproxy/v2/cmd/cli=toxiproxy-cli
fi
exit "$failed"
