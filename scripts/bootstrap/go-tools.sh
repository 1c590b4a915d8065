# shellcheck shell=bash disable=SC2034 # failed is read by the sourcing script
# Sourced by tools.sh and kube.sh, after `set -euo pipefail` and with $root set:
# how both build pinned Go tools into .tools/bin (git-ignored). A stamp
# .tools/bin/.NAME.version records what each was built from, so a tool already
# at its pin is skipped. The user's default Go module and build caches are used
# on purpose: a fresh clone on the same machine then only links (seconds).
bin="${root:?}/.tools/bin"
failed=0

# need_go WHAT: exits 1 unless go is on PATH; WHAT names what it would build.
need_go() {
  command -v go >/dev/null 2>&1 && return
  echo "bootstrap: 'go' is not on PATH; Go >= 1.26 is needed to build $1" >&2
  exit 1
}

# One build at a time, one lock for both scripts: on 2 cores two Go builds at
# once are no faster (tools.sh cold: 105 s either way; compiling already uses
# both cores). A second concurrent run waits here, then finds the stamps and
# does nothing.
lock_bin() {
  mkdir -p "$bin"
  exec 9>"$bin/.lock"
  flock 9
}

# up_to_date NAME VERSION BINARY...: stamped at VERSION, every binary present.
up_to_date() {
  local name=$1 version=$2 b
  shift 2
  [ "$(cat "$bin/.$name.version" 2>/dev/null)" = "$version" ] || return 1
  for b in "$@"; do [ -x "$bin/$b" ] || return 1; done
}

# run NAME VERSION BUILD...: runs the command BUILD... in a subshell, go's output
# (a line per module it downloads) shown only if it fails, then stamps NAME
# (last, so an interrupted build is redone next time). A failure sets failed=1
# and the next build still runs. BUILD runs as an `if` condition, where set -e
# is off: build functions need an explicit `|| return` after each step.
run() {
  local name=$1 version=$2 log="$bin/.build-$1.log" start=$SECONDS
  shift 2
  echo "bootstrap: building $name $version into .tools/bin"
  if ( "$@" ) >"$log" 2>&1; then
    echo "$version" >"$bin/.$name.version"
    rm -f "$log"
    echo "bootstrap: built $name $version in $((SECONDS - start)) s"
  else
    cat "$log" >&2
    echo "bootstrap: building $name $version failed (go output above, kept in ${log#"$root"/})" >&2
    failed=1
  fi
}

# go_install NAME VERSION LDFLAGS PACKAGE=BINARY...: for run.
# go install names a binary after its package directory (cmd/server -> server),
# so it installs into a scratch GOBIN and each binary is renamed into place.
# CGO off: static binaries, as upstream releases them, and no C compiler needed.
# tmp is global for the EXIT trap, which fires when run's subshell ends.
go_install() {
  local name=$1 version=$2 ldflags=$3 spec pkg pkgs=()
  shift 3
  tmp=$(mktemp -d "$bin/.build-$name.XXXXXX") || return
  trap 'rm -rf "$tmp"' EXIT
  for spec in "$@"; do pkgs+=("${spec%%=*}@$version"); done
  GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" "${pkgs[@]}" || return
  for spec in "$@"; do
    pkg=${spec%%=*}
    mv -f "$tmp/${pkg##*/}" "$bin/${spec#*=}" || return
  done
}
