#!/usr/bin/env bash
# shellcheck disable=SC2317 # the build_* functions are called through run
# Builds the pinned Go tools the tests need into .tools/bin (git-ignored):
# helm, toxiproxy-server and toxiproxy-cli; see go-tools.sh for the stamps,
# the lock and the Go caches.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=SCRIPTDIR/../versions.env
source "$root/scripts/versions.env"
# shellcheck source=SCRIPTDIR/go-tools.sh
source "$root/scripts/bootstrap/go-tools.sh"

need_go "helm $HELM_VERSION and toxiproxy $TOXIPROXY_VERSION"
lock_bin

# Release builds stamp the version and the Kubernetes version helm assumes
# (.Capabilities.KubeVersion, `helm lint`) from its client-go; without these
# flags helm reports v3.22+unreleased and Kubernetes v1.20.
helm_ldflags() {
  local gomod client_go minor
  gomod=$(go list -m -f '{{.GoMod}}' "helm.sh/helm/v3@$HELM_VERSION") || return
  client_go=$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$gomod")  # v0.MINOR.PATCH
  minor=$(echo "$client_go" | cut -d. -f2)
  [ -n "$minor" ] || { echo "bootstrap: no k8s.io/client-go version in $gomod" >&2; return 1; }
  local v=helm.sh/helm/v3
  echo "-s -w -X $v/internal/version.version=$HELM_VERSION -X $v/internal/version.metadata=" \
    "-X $v/pkg/lint/rules.k8sVersionMajor=1 -X $v/pkg/lint/rules.k8sVersionMinor=$minor" \
    "-X $v/pkg/chartutil.k8sVersionMajor=1 -X $v/pkg/chartutil.k8sVersionMinor=$minor"
}

build_helm() {
  local ldflags
  ldflags=$(helm_ldflags) || return
  go_install helm "$HELM_VERSION" "$ldflags" helm.sh/helm/v3/cmd/helm=helm
}

build_toxiproxy() {
  go_install toxiproxy "$TOXIPROXY_VERSION" "-s -w -X github.com/Shopify/toxiproxy/v2.Version=${TOXIPROXY_VERSION#v}" \
    github.com/Shopify/toxiproxy/v2/cmd/server=toxiproxy-server \
    github.com/Shopify/toxiproxy/v2/cmd/cli=toxiproxy-cli
}

up_to_date helm "$HELM_VERSION" helm || run helm "$HELM_VERSION" build_helm
up_to_date toxiproxy "$TOXIPROXY_VERSION" toxiproxy-server toxiproxy-cli || run toxiproxy "$TOXIPROXY_VERSION" build_toxiproxy
exit "$failed"
