#!/usr/bin/env bash
# The dev stack's Kubernetes cluster: one real node on this machine, everything bound to 127.0.0.1.
#
#   bash infra/kubernetes/cluster.sh start     build/install what is missing, start, wait for the node to be Ready
#   bash infra/kubernetes/cluster.sh stop      stop every process by its pid; remove the pods' netns, mounts,
#                                              the bridge and the cgroups
#   bash infra/kubernetes/cluster.sh status    exit 0 when all processes run and the node is Ready
#
# Normally run through `bash infra/stack.sh start|stop|status kubernetes`, which passes the stack's state
# dir, registry port and registry credentials (FERRY_STATE_DIR, FERRY_REGISTRY_PORT, FERRY_REGISTRY_USER,
# FERRY_REGISTRY_PASSWORD). Everything lives in $FERRY_STATE_DIR/kubernetes: certificates, etcd's data,
# containerd's root and state, the kubelet's root, pids, logs, and `kubeconfig` (cluster-admin).
#
# Processes: etcd (Debian's), kube-apiserver, kube-controller-manager, kube-scheduler, kubelet (built by
# build.sh), containerd (Debian's, on its own socket) with runc behind runc-clamp-oom, CNI bridge +
# host-local. No kube-proxy: Service cluster IPs do not route; pods are reached at their pod IPs.
# The pod sandbox image (kubernetes/pause:3.10) and a busybox for tests (kubernetes/busybox:1.35) are
# pushed to the stack's registry; containerd pulls from it with the registry's credentials, so pods need
# no imagePullSecrets.
#
# Knobs (a second cluster beside the first needs other ports, another state dir and another pod subnet):
#   FERRY_K8S_API_PORT (16443)  FERRY_K8S_ETCD_PORT (12379, peer +1)  FERRY_K8S_KUBELET_PORT (20250, healthz -2)
#   FERRY_K8S_CONTROLLER_MANAGER_PORT (20257)  FERRY_K8S_SCHEDULER_PORT (20259)
#   FERRY_K8S_POD_SUBNET (10.88.0.0/24)  FERRY_K8S_TIMEOUT (seconds to wait for each part, 90)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
source "$HERE/../shell-helpers.sh"
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

STATE_DIR="$(realpath -m "${FERRY_STATE_DIR:-$REPO_ROOT/.ferry}")"
REGISTRY_PORT="${FERRY_REGISTRY_PORT:-5000}"
REGISTRY="127.0.0.1:$REGISTRY_PORT"
API_PORT="${FERRY_K8S_API_PORT:-16443}"
ETCD_PORT="${FERRY_K8S_ETCD_PORT:-12379}"
ETCD_PEER_PORT=$((ETCD_PORT + 1))
KUBELET_PORT="${FERRY_K8S_KUBELET_PORT:-20250}"
KUBELET_HEALTHZ_PORT=$((KUBELET_PORT - 2))
CONTROLLER_MANAGER_PORT="${FERRY_K8S_CONTROLLER_MANAGER_PORT:-20257}"
SCHEDULER_PORT="${FERRY_K8S_SCHEDULER_PORT:-20259}"
POD_SUBNET="${FERRY_K8S_POD_SUBNET:-10.88.0.0/24}"
TIMEOUT="${FERRY_K8S_TIMEOUT:-90}"
SERVICE_SUBNET=10.96.0.0/16

DIR="$STATE_DIR/kubernetes"
PKI="$DIR/pki"
CTRD="$DIR/containerd"
SOCK="$CTRD/containerd.sock"
KUBECONFIG_FILE="$DIR/kubeconfig"
# "localhost" resolves to 127.0.0.1 on every machine: the apiserver reaches the kubelet by the node's
# hostname (a kubelet refuses a loopback node IP), and the kubelet's serving port is on loopback only.
NODE=localhost
# Names that must differ between two clusters on one machine derive from the state dir.
ID="$(printf '%s' "$DIR" | sha256sum | cut -c1-8)"
BRIDGE="fk8s-$ID"
CNI_NETWORK="ferry-k8s-$ID"
CGROUP_ROOT="/ferry-k8s-$ID"
# in start order; stop goes the other way
PROCS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet)
PAUSE_IMAGE="$REGISTRY/kubernetes/pause:3.10"
DEBS=(etcd-server containerd runc containernetworking-plugins iptables conntrack openssl curl)

# --- processes --------------------------------------------------------------------------------------
pid_file() { echo "$DIR/pids/$1.pid"; }

# the pid of a cluster process if it runs (its recorded pid, with the expected program name), else 1
proc_pid() {
  local f pid exe
  f="$(pid_file "$1")"
  [[ -f "$f" ]] || return 1
  pid="$(head -n1 "$f")"
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 1
  exe="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n1)"
  [[ "$(basename "$exe")" == "$1" ]] || return 1
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
  echo "$pid"
}

# launch <name> <cmd...>: detached in its own session, logging to $DIR/logs/<name>.log, pid recorded
launch() {
  local name="$1"; shift
  mkdir -p "$DIR/pids" "$DIR/logs"
  printf '\n=== %s: starting %s\n' "$(date -Is)" "$*" >>"$DIR/logs/$name.log"
  rm -f "$(pid_file "$name")"
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$(pid_file "$name")" "$@" >>"$DIR/logs/$name.log" 2>&1 </dev/null 8>&- 9>&- &
  local i
  for i in $(seq 1 50); do [[ -s "$(pid_file "$name")" ]] && return 0; sleep 0.1; done
  fail "$name" "did not start (no pid recorded)"
}

fail() {
  printf '%serror:%s kubernetes: %s: %s\n' "$R" "$N" "$1" "$2" >&2
  if [[ -s "$DIR/logs/$1.log" ]]; then
    printf -- '--- last 20 lines of %s ---\n' "$DIR/logs/$1.log" >&2
    tail -n 20 "$DIR/logs/$1.log" >&2
  fi
  exit 1
}

# wait_for <name> <check...>: until the check passes; fails when the process exits or after TIMEOUT
wait_for() {
  local name="$1" t0; shift
  t0=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    proc_pid "$name" >/dev/null || fail "$name" "exited during startup"
    (( $(date +%s) - t0 < TIMEOUT )) || fail "$name" "not healthy after ${TIMEOUT}s"
    sleep 0.5
  done
}

# stop_proc <name>: TERM, KILL after 20 s
stop_proc() {
  local pid i
  pid="$(proc_pid "$1")" || { rm -f "$(pid_file "$1")"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do proc_pid "$1" >/dev/null || break; sleep 0.2; done
  if proc_pid "$1" >/dev/null; then
    warn "$1: still running after 20s; sending KILL to pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$(pid_file "$1")"
  ok "$1: stopped (pid $pid)"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- the API, as cluster-admin -------------------------------------------------------------------------
api() { curl -fsS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://127.0.0.1:$API_PORT$1"; }

node_ready() { api "/api/v1/nodes/$NODE" | tr -d ' \n' | grep -q '"type":"Ready","status":"True"'; }

# --- installs -----------------------------------------------------------------------------------------
ensure_packages() {
  local p missing=()
  for p in "${DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  command -v gcc >/dev/null || missing+=(gcc libc6-dev)
  [[ ${#missing[@]} -eq 0 ]] || apt_install "${missing[@]}"
  # Debian's packages start their own etcd and containerd where systemd runs; the cluster runs its own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
    warn "the etcd package's own service is running (the cluster does not use it)"
  fi
}

# the static pause binary, built from pause.c into the cache (keyed by the source)
pause_binary() {
  local cache="${FERRY_CACHE_DIR:-$HOME/.cache/ferry}" out
  [[ "$cache" == "~/"* ]] && cache="$HOME/${cache#"~/"}"
  out="$cache/kubernetes/pause-$(sha256sum "$HERE/pause.c" | cut -c1-12)"
  if [[ ! -x "$out" ]]; then
    mkdir -p "$(dirname "$out")"
    gcc -static -Os -s -o "$out.tmp" "$HERE/pause.c" && mv "$out.tmp" "$out" || die "kubernetes: could not build the pause binary with gcc -static"
  fi
  echo "$out"
}

# curl with the registry's credentials, given on stdin so that they never show in a process list
registry_curl() {
  printf 'user = "%s:%s"\n' "${FERRY_REGISTRY_USER:-}" "${FERRY_REGISTRY_PASSWORD:-}" | curl -K - -fsS -o /dev/null --max-time 5 "$@"
}

registry_has() {   # registry_has <repo> <tag>
  registry_curl -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REGISTRY/v2/$1/manifests/$2"
}

ensure_node_images() {
  if registry_has kubernetes/pause 3.10 && registry_has kubernetes/busybox 1.35; then return 0; fi
  step "kubernetes: pushing the pause and busybox images to $REGISTRY"
  local pause; pause="$(pause_binary)"
  (cd "$REPO_ROOT" && node --no-warnings --import tsx infra/kubernetes/push-node-images.ts "$pause") \
    || die "kubernetes: pushing the node images failed"
}

# --- certificates and kubeconfigs (made once; a restart keeps them, so kubeconfigs stay valid) -------------
issue_cert() {   # issue_cert <file name> <subject> [subjectAltName]: signed by the cluster's CA
  local f="$PKI/$1" ext
  [[ -s "$f.crt" ]] && return 0
  ext="$(mktemp)"
  printf 'extendedKeyUsage=serverAuth,clientAuth\n%s' "${3:+subjectAltName=$3}" >"$ext"
  openssl req -newkey rsa:2048 -nodes -keyout "$f.key" -subj "$2" -out "$f.csr" 2>/dev/null
  openssl x509 -req -in "$f.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 3650 \
    -extfile "$ext" -out "$f.crt" 2>/dev/null
  rm -f "$f.csr" "$ext"
}

write_kubeconfig() {   # write_kubeconfig <file> <cert name>
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ferry
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$2.crt")
    client-key-data: $(base64 -w0 "$PKI/$2.key")
contexts:
- name: ferry
  context: {cluster: ferry, user: $2}
current-context: ferry
EOF
  chmod 600 "$1"
}

ensure_pki() {
  mkdir -p "$PKI" && chmod 700 "$PKI"
  if [[ ! -s "$PKI/ca.crt" ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 \
      -subj "/CN=ferry-dev-cluster-ca" 2>/dev/null
  fi
  issue_cert apiserver /CN=kube-apiserver \
    "IP:127.0.0.1,IP:${SERVICE_SUBNET%.0/*}.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  # system:masters: the apiserver's calls to the kubelet (logs, exec) and the admin are cluster-admins
  issue_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  issue_cert admin "/O=system:masters/CN=ferry-admin"
  # the identities the bootstrap RBAC policy and the Node authorizer know
  issue_cert controller-manager /CN=system:kube-controller-manager
  issue_cert scheduler /CN=system:kube-scheduler
  issue_cert kubelet "/O=system:nodes/CN=system:node:$NODE"
  [[ -s "$PKI/sa.key" ]] || { openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null && openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null; }
  local who
  for who in controller-manager scheduler kubelet; do write_kubeconfig "$DIR/$who.kubeconfig" "$who"; done
  write_kubeconfig "$KUBECONFIG_FILE" admin
}

# --- node configuration -----------------------------------------------------------------------------------
write_cni_config() {
  mkdir -p "$DIR/cni/conf"
  cat >"$DIR/cni/conf/10-ferry.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
      "ipam": { "type": "host-local", "dataDir": "$DIR/cni/ipam", "ranges": [[{ "subnet": "$POD_SUBNET" }]], "routes": [{ "dst": "0.0.0.0/0" }] }
    },
    { "type": "loopback" }
  ]
}
EOF
}

write_containerd_config() {
  mkdir -p "$CTRD"
  # auth for the stack's registry: pods pull Ferry's images without imagePullSecrets
  ( umask 077; cat >"$CTRD/config.toml" <<EOF
# written by infra/kubernetes/cluster.sh on every start
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$HERE/runc-clamp-oom"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REGISTRY"]
    endpoint = ["http://$REGISTRY"]
  [plugins."io.containerd.grpc.v1.cri".registry.configs."$REGISTRY".auth]
    username = "${FERRY_REGISTRY_USER:-}"
    password = "${FERRY_REGISTRY_PASSWORD:-}"
EOF
  )
}

# The kubelet puts its pods' cgroups under CGROUP_ROOT, which must exist in every v1 hierarchy (a cpuset
# cgroup takes no task until it has cpus and mems).
ensure_cgroup_root() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -e "$h/cgroup.procs" && "$h" != */unified/ ]] || continue
    mkdir -p "$h${CGROUP_ROOT#/}"
    if [[ -e "$h/cpuset.cpus" ]]; then
      cat "$h/cpuset.cpus" >"$h${CGROUP_ROOT#/}/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h${CGROUP_ROOT#/}/cpuset.mems"
    fi
  done
}

write_kubelet_config() {
  mkdir -p "$DIR/kubelet"
  cat >"$DIR/kubelet/config.yaml" <<EOF
# written by infra/kubernetes/cluster.sh on every start
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$SOCK
# cgroup v1 (hybrid) hosts without systemd
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
podLogsDir: $DIR/kubelet/pod-logs
volumePluginDir: $DIR/kubelet/volume-plugins
# a dev machine: swap may be on, no resources set aside, no eviction or image GC on a fuller disk
failSwapOn: false
enforceNodeAllocatable: []
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
localStorageCapacityIsolation: false
EOF
}

# --- start ------------------------------------------------------------------------------------------
all_running() { local p; for p in "${PROCS[@]}"; do proc_pid "$p" >/dev/null || return 1; done; }

check_ports_free() {
  local p
  for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT" "$CONTROLLER_MANAGER_PORT" "$SCHEDULER_PORT" "$KUBELET_PORT" "$KUBELET_HEALTHZ_PORT"; do
    ! port_open "$p" || die "kubernetes: port $p on 127.0.0.1 is in use by another process (set the FERRY_K8S_*_PORT variables)"
  done
}

cmd_start() {
  local t0 bin
  t0=$(date +%s)
  if all_running && node_ready; then
    ok "kubernetes: already running, node $NODE Ready (kubeconfig: $KUBECONFIG_FILE)"
    return 0
  fi
  ensure_packages
  bin="$(bash "$HERE/build.sh" | tail -n1)"
  [[ -x "$bin/kube-apiserver" ]] || die "kubernetes: build.sh gave no binaries"
  if ! all_running; then
    # a partly running cluster (a crash, a killed start): start it whole
    local p; for p in "${PROCS[@]}"; do proc_pid "$p" >/dev/null && { warn "kubernetes: only partly running; restarting"; cmd_stop; break; }; done
    t0=$(date +%s)
    check_ports_free
    registry_curl "http://$REGISTRY/v2/" || die "kubernetes: the stack's registry does not answer at $REGISTRY (bash infra/stack.sh start registry)"
    ensure_pki
    ensure_node_images
    step "kubernetes: starting (state: $DIR)"

    launch etcd etcd --name ferry --data-dir "$DIR/etcd" \
      --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
      --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster "ferry=http://127.0.0.1:$ETCD_PEER_PORT"
    wait_for etcd curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"
    ok "etcd: 127.0.0.1:$ETCD_PORT"

    # the endpoint reconciler refuses a loopback advertise address; "none" leaves the kubernetes Service
    # without endpoints (nothing here needs them)
    launch kube-apiserver "$bin/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
      --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" --endpoint-reconciler-type=none \
      --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" --client-ca-file="$PKI/ca.crt" \
      --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
      --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
      --service-account-issuer=https://kubernetes.default.svc --service-cluster-ip-range="$SERVICE_SUBNET" \
      --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
      --kubelet-preferred-address-types=Hostname --allow-privileged=true --cert-dir="$PKI/generated"
    wait_for kube-apiserver api /readyz
    ok "kube-apiserver: https://127.0.0.1:$API_PORT"

    launch kube-controller-manager "$bin/kube-controller-manager" --kubeconfig="$DIR/controller-manager.kubeconfig" \
      --authentication-kubeconfig="$DIR/controller-manager.kubeconfig" --authorization-kubeconfig="$DIR/controller-manager.kubeconfig" \
      --bind-address=127.0.0.1 --secure-port="$CONTROLLER_MANAGER_PORT" --leader-elect=false --cert-dir="$PKI/generated" \
      --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" --use-service-account-credentials=true \
      --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key"
    launch kube-scheduler "$bin/kube-scheduler" --kubeconfig="$DIR/scheduler.kubeconfig" \
      --authentication-kubeconfig="$DIR/scheduler.kubeconfig" --authorization-kubeconfig="$DIR/scheduler.kubeconfig" \
      --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=false --cert-dir="$PKI/generated"
    wait_for kube-controller-manager curl -fsSk --max-time 2 "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz"
    wait_for kube-scheduler curl -fsSk --max-time 2 "https://127.0.0.1:$SCHEDULER_PORT/healthz"
    ok "kube-controller-manager: 127.0.0.1:$CONTROLLER_MANAGER_PORT, kube-scheduler: 127.0.0.1:$SCHEDULER_PORT"

    write_cni_config
    write_containerd_config
    launch containerd containerd --config "$CTRD/config.toml"
    wait_for containerd ctr --address "$SOCK" version
    ok "containerd: $SOCK"

    ensure_cgroup_root
    write_kubelet_config
    launch kubelet "$bin/kubelet" --config="$DIR/kubelet/config.yaml" --kubeconfig="$DIR/kubelet.kubeconfig" \
      --root-dir="$DIR/kubelet/root" --cert-dir="$DIR/kubelet/pki" --hostname-override="$NODE"
  fi
  wait_for kubelet node_ready
  ok "kubelet: node $NODE Ready"
  # pods are refused in a namespace until the controller-manager has made its default ServiceAccount
  wait_for kube-controller-manager api /api/v1/namespaces/default/serviceaccounts/default
  ok "kubernetes: up in $(( $(date +%s) - t0 ))s — KUBECONFIG=$KUBECONFIG_FILE"
}

# --- stop -------------------------------------------------------------------------------------------
# The pods' network namespaces: the CNI result cache names them (interface "sandbox") for our network.
pod_netns() {
  local f
  for f in /var/lib/cni/results/"$CNI_NETWORK"-*; do
    [[ -f "$f" ]] || continue
    grep -o '"sandbox":"[^"]*"' "$f" | sed 's/"sandbox":"\(.*\)"/\1/'
    rm -f "$f"
  done | sort -u
}

cmd_stop() {
  local name pid f ns
  stop_proc kubelet
  # pod containers and sandboxes: kill their tasks while containerd can still do it, then their shims
  if proc_pid containerd >/dev/null; then
    for name in $(ctr --address "$SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$SOCK" -n k8s.io tasks kill -s KILL "$name" >/dev/null 2>&1 || true
    done
    sleep 1
    for name in $(ctr --address "$SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$SOCK" -n k8s.io tasks delete -f "$name" >/dev/null 2>&1 || true
    done
  fi
  stop_proc containerd
  for f in "$CTRD"/state/io.containerd.runtime.v2.task/*/*/shim.pid; do
    [[ -f "$f" ]] || continue
    pid="$(cat "$f")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-address $SOCK"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for name in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_proc "$name"; done
  # what the node leaves behind: pods' netns, mounts under the state dir, the bridge, the IP leases,
  # the pods' cgroups
  for ns in $(pod_netns); do
    umount "$ns" 2>/dev/null || true
    rm -f "$ns"
  done
  awk -v r="$DIR/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -rf "$DIR/cni/ipam"
  local h
  for h in /sys/fs/cgroup/*/"${CGROUP_ROOT#/}"; do
    [[ -d "$h" ]] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  ok "kubernetes: stopped; netns, mounts, bridge $BRIDGE and cgroups removed"
}

# --- status -----------------------------------------------------------------------------------------
#   status          one line per process, then the node; exit 1 unless all run and the node is Ready
#   status --line   one line for infra/stack.sh's table: healthy|unhealthy|stopped, apiserver pid, port, URL
cmd_status() {
  local p pid down=0 running=0
  for p in "${PROCS[@]}"; do
    if pid="$(proc_pid "$p")"; then
      running=1
      [[ "${1:-}" == --line ]] || printf '  %-24s running (pid %s)\n' "$p" "$pid"
    else
      down=1
      [[ "${1:-}" == --line ]] || printf '  %-24s stopped\n' "$p"
    fi
  done
  [[ $down -eq 0 ]] && node_ready || down=1
  if [[ "${1:-}" == --line ]]; then
    local state=healthy
    [[ $down -eq 0 ]] || { if [[ $running -eq 1 ]]; then state=unhealthy; else state=stopped; fi; }
    echo "$state $(proc_pid kube-apiserver || echo -) $API_PORT https://127.0.0.1:$API_PORT (node $NODE, KUBECONFIG=$KUBECONFIG_FILE)"
  elif [[ $down -eq 0 ]]; then
    say "  node $NODE Ready; api https://127.0.0.1:$API_PORT; KUBECONFIG=$KUBECONFIG_FILE"
  fi
  return $down
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status "${2:-}" ;;
  *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; [[ -n "${1:-}" ]] && exit 2 ;;
esac
