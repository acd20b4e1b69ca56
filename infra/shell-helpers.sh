# Output, root and apt helpers shared by infra/stack.sh and the install scripts beside it (sourced, not run).

if [[ -t 1 ]]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' Y=$'\e[33m' N=$'\e[0m'; else B='' G='' R='' Y='' N=''; fi
say()  { printf '%s\n' "$*"; }
step() { printf '%s==>%s %s\n' "$B" "$N" "$*"; }
ok()   { printf '  %s✓%s %s\n' "$G" "$N" "$*"; }
warn() { printf '  %s!%s %s\n' "$Y" "$N" "$*" >&2; }
die()  { printf '%serror:%s %s\n' "$R" "$N" "$*" >&2; exit 1; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $* (not root and no sudo)"; fi
}

APT_UPDATED=0
apt_update_once() {
  [[ $APT_UPDATED -eq 1 ]] && return 0
  step "apt-get update"
  as_root apt-get update -qq || die "apt-get update failed"
  APT_UPDATED=1
}

# apt-get install, with one `apt-get update` and a retry when the package lists are stale.
apt_install() {
  step "installing Debian package(s): $* (apt-get)"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"; then
    [[ $APT_UPDATED -eq 0 ]] || die "apt-get install $* failed"
    step "apt-get install failed; running apt-get update once and retrying"
    apt_update_once
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" \
      || die "apt-get install $* failed"
  fi
}
