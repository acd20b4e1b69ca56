/**
 * The user data of a Ferry replica instance: a bash script (cloud-init runs it once, as root, at first
 * boot) that
 *   1. installs a container engine (podman) and runc from the distribution's own repositories when the AMI
 *      lacks them — the only things it installs;
 *   2. pulls the revision's image, pinned by digest, from the configured registry;
 *   3. runs it with the replica's limits (CPUs, memory without swap, a pid limit, read-only root), its
 *      port published, on a bridge network so the replica cannot reach the instance metadata service;
 *   4. starts the replica agent (runtime/agent) with the image's own node, on the host network (it polls
 *      the metadata service) and in the host's pid namespace (it signals the replica to drain).
 * The agent's bundle travels inside the script, gzipped and base64-encoded (EC2 takes 16 KB of user data).
 */
import { gzipSync } from 'node:zlib';
import type { ImageRef, ReplicaResources } from '../deploymentTarget';

/** Port the image's server listens on inside the container (lib/image/imageKinds.ts SERVER_PORT). */
export const IMAGE_SERVER_PORT = 8000;
const USER_DATA_LIMIT = 16 * 1024;

export interface ReplicaUserData {
  deployment: string;
  model: string;
  revision: string;
  image: ImageRef;
  resources: ReplicaResources;
  /** Host port the replica answers on. */
  port: number;
  /** How long the replica may take to finish in-flight requests on SIGTERM (the notice gives 2 minutes). */
  drainTimeoutMs: number;
  /** The replica agent, bundled to one file (runtime/agent/bundle.ts). */
  agentScript: string;
  /** Where the agent reaches Ferry's control API to drain the replica and ask for a replacement; none: it drains locally only. */
  controlUrl?: string;
}

/** `host[:port]/repository@sha256:…` and whether the registry speaks plain HTTP. */
export function imageReference(image: ImageRef): { ref: string; plainHttp: boolean } {
  if (!/^sha256:[0-9a-f]{64}$/.test(image.reference))
    throw new Error(
      `the ec2 target runs images pinned by digest (sha256:…), got reference "${image.reference}" for ${image.repository}: ` +
        'a tag could be pushed again while instances start',
    );
  const url = new URL(image.registry.includes('://') ? image.registry : `https://${image.registry}`);
  return { ref: `${url.host}/${image.repository}@${image.reference}`, plainHttp: url.protocol === 'http:' };
}

/** A shell word: single-quoted, with embedded quotes escaped. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function renderUserData(u: ReplicaUserData): string {
  const { ref, plainHttp } = imageReference(u.image);
  const memory = `${Math.max(6, Math.floor(u.resources.memoryMb))}m`;
  const agent = gzipSync(Buffer.from(u.agentScript)).toString('base64');
  const agentEnv: Record<string, string> = {
    FERRY_AGENT_DEPLOYMENT: u.deployment,
    FERRY_AGENT_REVISION: u.revision,
    FERRY_AGENT_REPLICA_URL: `http://127.0.0.1:${u.port}`,
    FERRY_AGENT_REPLICA_CMDLINE: '/usr/bin/node /app/server.js',
    ...(u.controlUrl ? { FERRY_AGENT_FERRY_URL: u.controlUrl } : {}),
  };
  const envFlags = Object.entries(agentEnv)
    .map(([k, v]) => `-e ${k}=${shellQuote(v)}`)
    .join(' ');
  const script = `#!/bin/bash
# Ferry replica: deployment ${u.deployment}, model ${u.model}, revision ${u.revision}
set -euo pipefail
exec >>/var/log/ferry-replica.log 2>&1
echo "$(date -u +%FT%TZ) ferry: starting replica of ${u.deployment}/${u.revision}"
IMAGE=${shellQuote(ref)}
PULL_FLAGS=${plainHttp ? "'--tls-verify=false'" : "''"}

# 1. A container engine and runc (the OCI runtime Ferry's local target falls back to), from the
#    distribution's repositories, only when the AMI lacks them.
missing=""
command -v podman >/dev/null || missing="$missing podman"
command -v runc >/dev/null || missing="$missing runc"
if [ -n "$missing" ]; then
  if command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing
  elif command -v dnf >/dev/null; then
    dnf install -y -q $missing
  else
    echo "ferry: missing$missing, and neither apt-get nor dnf to install it" >&2; exit 1
  fi
fi

# 2. The agent's bundle, then the image (retried: the network may come up after cloud-init starts).
install -d -m 0755 /opt/ferry
echo '${agent}' | base64 -d | gunzip >/opt/ferry/agent.js
for attempt in $(seq 1 30); do
  podman pull $PULL_FLAGS "$IMAGE" && break
  [ "$attempt" = 30 ] && { echo "ferry: could not pull $IMAGE" >&2; exit 1; }
  sleep 10
done
podman rm -f ferry-replica ferry-agent >/dev/null 2>&1 || true

# 3. The replica, with its limits; restarted if it crashes, not after a drain (exit 0).
podman run -d --name ferry-replica --runtime runc --restart on-failure \\
  --cpus ${u.resources.cpus} --memory ${memory} --memory-swap ${memory} --pids-limit 512 \\
  --read-only --tmpfs /tmp:rw,size=64m --cap-drop all --security-opt no-new-privileges \\
  -e FERRY_DRAIN_TIMEOUT_MS=${Math.round(u.drainTimeoutMs)} \\
  -p ${u.port}:${IMAGE_SERVER_PORT} "$IMAGE"

# 4. The replica agent: interruption notices from the metadata service, drain, replacement.
podman run -d --name ferry-agent --runtime runc --restart always \\
  --network host --pid host --user 0 --cap-drop all --cap-add KILL --read-only \\
  -v /opt/ferry/agent.js:/opt/ferry/agent.js:ro --entrypoint /usr/bin/node \\
  ${envFlags} \\
  "$IMAGE" /opt/ferry/agent.js
echo "$(date -u +%FT%TZ) ferry: replica and agent started"
`;
  if (Buffer.byteLength(script) > USER_DATA_LIMIT)
    throw new Error(
      `the replica's user data is ${Buffer.byteLength(script)} bytes; EC2 takes at most ${USER_DATA_LIMIT}`,
    );
  return script;
}
