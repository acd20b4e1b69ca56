#!/usr/bin/env bash
# Installs moto's server (PyPI `moto[server]`), an emulator of an AWS account that the EC2 target's
# integration tests run against (test/helpers/motoServer.ts starts it on 127.0.0.1 on a free port).
# It goes into the project's virtualenv, beside the Temporal and SeaweedFS wheels (infra/stack.sh), and
# is no part of the dev stack: nothing starts it by default.
#
#   bash infra/install-moto.sh      installs it if missing (idempotent); prints moto_server's path on stdout
#
# Progress goes to stderr.
set -euo pipefail

MOTO_VERSION=5.2.5                      # PyPI moto, with the [server] extra (flask, werkzeug)
CACHE_DIR="$(realpath -m "${FERRY_CACHE_DIR:-$HOME/.cache/ferry}")"
VENV="$CACHE_DIR/venv"
EXE="$VENV/bin/moto_server"

installed() {
  [[ -x "$EXE" ]] && [[ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null)" == "$MOTO_VERSION" ]] \
    && "$VENV/bin/python" -c 'import flask, werkzeug' 2>/dev/null
}
if installed; then
  echo "$EXE"
  exit 0
fi
# One install at a time (test files started together may all find it missing).
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.install-moto.lock"
flock 9
if installed; then
  echo "$EXE"
  exit 0
fi

source "$(dirname "${BASH_SOURCE[0]}")/shell-helpers.sh"
if [[ ! -x "$VENV/bin/pip" ]]; then
  step "creating Python virtualenv $VENV" >&2
  py="$(command -v python3 || true)"
  [[ -n "$py" ]] || { apt_install python3 python3-venv >&2; py="$(command -v python3)"; }
  "$py" -m venv "$VENV" >&2 || { rm -rf "$VENV"; apt_install python3-venv >&2; "$py" -m venv "$VENV" >&2; }
fi
step "installing moto[server]==$MOTO_VERSION from PyPI into $VENV" >&2
"$VENV/bin/pip" install --disable-pip-version-check --progress-bar off "moto[server]==$MOTO_VERSION" >&2
installed || die "moto_server $MOTO_VERSION is not usable after the install"
echo "$EXE"
