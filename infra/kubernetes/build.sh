#!/usr/bin/env bash
# Builds the dev cluster's Kubernetes binaries (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet) from source with Go, through the Go module proxy, from the go.mod beside this script.
#
#   bash infra/kubernetes/build.sh          build if not cached; the last line printed is the bin folder
#   bash infra/kubernetes/build.sh --dir    only print the bin folder (built or not)
#
# The binaries are cached in $FERRY_CACHE_DIR/kubernetes/<key>/bin, the key a hash of go.mod, go.sum and
# the build flags, so a change to any of them builds anew and an unchanged tree never builds twice. The
# Go module and build caches are the dev stack's ($FERRY_CACHE_DIR/go). A cold build takes ~13 minutes on
# 2 cores; the seconds it took are kept in <key>/build-seconds (bench/cluster-bringup.ts reports them).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../shell-helpers.sh"

K8S_VERSION=v1.37.2
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
# the version variables `kube-apiserver --version` and the nodes' kubeletVersion report (a module build
# has no git tree to read them from)
LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 \
-X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
BUILD_FLAGS="CGO_ENABLED=0 -trimpath -ldflags=$LDFLAGS"

cache_root() {
  local d="${FERRY_CACHE_DIR:-$HOME/.cache/ferry}"
  [[ "$d" == "~/"* ]] && d="$HOME/${d#"~/"}"
  realpath -m "$d"
}
CACHE_DIR="$(cache_root)"
KEY="$(cat "$HERE/go.mod" "$HERE/go.sum" <(printf '%s' "$BUILD_FLAGS") | sha256sum | cut -c1-16)"
OUT="$CACHE_DIR/kubernetes/$KEY"
BIN="$OUT/bin"

built() { local b; for b in "${BINARIES[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done; }

if [[ "${1:-}" == --dir ]]; then echo "$BIN"; exit 0; fi
[[ $# -eq 0 ]] || die "usage: build.sh [--dir]"

if built; then echo "$BIN"; exit 0; fi

command -v go >/dev/null || die "Go is needed to build Kubernetes (the go.mod asks for go $(sed -n 's/^go //p' "$HERE/go.mod"))"
mkdir -p "$OUT"
exec 8>"$OUT/.build.lock"
if ! flock -n 8; then
  say "  another build of Kubernetes into $OUT is running; waiting for it"
  flock 8
  built && { echo "$BIN"; exit 0; }
fi

step "building Kubernetes $K8S_VERSION from source (${BINARIES[*]}) into $BIN"
say "  the first build on a machine takes roughly 13 minutes on 2 cores (about 1.5 minutes with a warm Go cache)"
say "  log: $OUT/build.log"
export GOMODCACHE="$CACHE_DIR/go/mod" GOCACHE="$CACHE_DIR/go/build" GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
t0=$(date +%s)
rm -rf "$OUT/bin.partial" && mkdir -p "$OUT/bin.partial"
pkgs=(); for b in "${BINARIES[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
# nice: the build takes both cores for many minutes; whatever else runs should not stall behind it
( cd "$HERE" && nice -n 10 go build -trimpath -ldflags "$LDFLAGS" -o "$OUT/bin.partial/" "${pkgs[@]}" ) >"$OUT/build.log" 2>&1 &
build_pid=$!
next=60
while kill -0 "$build_pid" 2>/dev/null; do
  sleep 2
  if (( $(date +%s) - t0 >= next )); then say "  still building Kubernetes: $((next / 60)) min so far"; next=$((next + 60)); fi
done
wait "$build_pid" || { tail -n 30 "$OUT/build.log" >&2; die "building Kubernetes failed (log: $OUT/build.log)"; }
rm -rf "$BIN" && mv "$OUT/bin.partial" "$BIN"
echo "$(( $(date +%s) - t0 ))" >"$OUT/build-seconds"
ok "Kubernetes $K8S_VERSION built in $(( $(date +%s) - t0 ))s"
echo "$BIN"
