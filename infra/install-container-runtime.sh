#!/usr/bin/env bash
# Installs what Ferry runs containers with (lib/container):
#   youki  — the preferred OCI runtime (Rust), built from crates.io with `cargo install` (no prebuilt binary
#            can be fetched here), cached as $FERRY_CACHE_DIR/bin/youki-<version>-<features> and linked as
#            $FERRY_CACHE_DIR/bin/youki. The build took 14.5 min on 2 busy cores at one job.
#   runc   — the fallback runtime, Debian's package;
#   conmon — the container monitor (Debian's package): parent of the container's init, records its exit;
#   busybox-static — the shell the container tests build their root filesystem from.
#
#   bash infra/install-container-runtime.sh            install what is missing (idempotent)
#   FERRY_SKIP_YOUKI=1 bash infra/install-container-runtime.sh   runc only (no Rust build)
#
# Features: v1 and v2 cgroup managers (a host may run cgroup v1, v2 or the hybrid of both; hybrid uses
# the v1 manager), seccomp (links libseccomp: without it youki cannot apply the spec's seccomp profile).
# systemd is off: Ferry's runtime module uses plain cgroupfs paths, and these hosts need not run systemd.
set -euo pipefail

CACHE_DIR="$(realpath -m "${FERRY_CACHE_DIR:-$HOME/.cache/ferry}")"
BIN_DIR="$CACHE_DIR/bin"

YOUKI_VERSION=0.7.0
YOUKI_FEATURES=seccomp,v1,v2
YOUKI_BIN="$BIN_DIR/youki-$YOUKI_VERSION-${YOUKI_FEATURES//,/_}"
YOUKI_LINK="$BIN_DIR/youki"
# Debian puts runc in /usr/sbin, which a non-login shell may not have on PATH.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# first line of a command's output, read whole (youki panics on a pipe closed early, as `| head` does)
first_line() { local out; out="$("$@" 2>&1)"; printf '%s' "${out%%$'\n'*}"; }

source "$(dirname "${BASH_SOURCE[0]}")/shell-helpers.sh"

# prints the packages of "$@" that dpkg does not list as installed
missing_debs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

install_debian_parts() {
  local debs; debs="$(missing_debs runc conmon busybox-static)"
  [[ -z "$debs" ]] || apt_install $debs
  ok "runc: $(command -v runc) ($(first_line runc --version))"
  ok "conmon: $(command -v conmon) ($(first_line conmon --version))"
  ok "busybox: /bin/busybox ($(first_line /bin/busybox --help))"
}

install_youki() {
  if [[ -x "$YOUKI_BIN" ]] && "$YOUKI_BIN" --version >/dev/null 2>&1; then
    ln -sfn "$(basename "$YOUKI_BIN")" "$YOUKI_LINK"
    ok "youki: $YOUKI_LINK -> $(basename "$YOUKI_BIN") ($(first_line "$YOUKI_BIN" --version))"
    return 0
  fi
  command -v cargo >/dev/null || die "youki is built with cargo, which is not on PATH (install Rust, or set FERRY_SKIP_YOUKI=1 for runc only)"
  # libseccomp-dev: the seccomp feature links libseccomp through pkg-config; build-essential: cc for build.rs.
  local debs; debs="$(missing_debs libseccomp-dev pkg-config build-essential)"
  [[ -z "$debs" ]] || apt_install $debs
  local root t0; root="$(mktemp -d)"; t0=$(date +%s)
  step "building youki $YOUKI_VERSION (features $YOUKI_FEATURES) with cargo install: ~15 min on 2 cores at one job"
  # One job and a lower priority: this build shares the machine with everything else running on it.
  CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" nice -n 10 cargo install youki --locked --version "=$YOUKI_VERSION" \
    --no-default-features --features "$YOUKI_FEATURES" --root "$root" \
    || { rm -rf "$root"; die "cargo install youki $YOUKI_VERSION failed (see above)"; }
  mkdir -p "$BIN_DIR"
  install -m 0755 "$root/bin/youki" "$YOUKI_BIN.tmp" && mv "$YOUKI_BIN.tmp" "$YOUKI_BIN"
  rm -rf "$root"
  ln -sfn "$(basename "$YOUKI_BIN")" "$YOUKI_LINK"
  ok "youki: built in $(( $(date +%s) - t0 ))s; $YOUKI_LINK -> $(basename "$YOUKI_BIN") ($(first_line "$YOUKI_BIN" --version))"
}

t0=$(date +%s)
step "container runtimes (cache: $BIN_DIR)"
install_debian_parts
if [[ "${FERRY_SKIP_YOUKI:-}" == 1 ]]; then ok "youki: skipped (FERRY_SKIP_YOUKI=1)"; else install_youki; fi
ok "container runtimes ready in $(( $(date +%s) - t0 ))s"
