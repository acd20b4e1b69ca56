/**
 * An image's replica as a container (lib/container): the image's own entrypoint under youki or runc,
 * with the plan's CPU and memory limits, a read-only root filesystem, no new privileges, the seccomp
 * profile and the image's non-root user (lib/container/bundleSpec.ts gives every container those).
 *
 * Each replica has a folder of its own, `<stateDir>/gateway/sockets/c-<hex>/`, bind-mounted at
 * /run/ferry and given to the container's user: the server listens on /run/ferry/replica.sock in it,
 * which the gateway reaches on the host side as it reaches a process replica's socket. (A server that
 * cannot listen on a socket gets a 127.0.0.1 port: containers share the host's network namespace.)
 * The container is supervised by its monitor, conmon, so it outlives a gateway restart; the next
 * gateway finds it again from its bundle folder, recorded with the replica.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { containerHostEnv } from '../config';
import type { ContainerLimits } from '../container/bundleSpec';
import { Container, runContainer } from '../container/container';
import type { ContainerRuntime } from '../container/containerRuntime';
import { type LaunchPlan, replicaPlanKey } from './launchPlan';
import {
  freePort,
  MAX_SOCKET_PATH,
  pruneLogs,
  Replica,
  readProcStartTicks,
  type StoredReplicaRecord,
} from './replicaProcess';
import type { TakenStandbyContainer } from './standbyContainer';

/** Where the replica's socket folder is mounted inside its container. */
export const SOCKET_DIR_IN_CONTAINER = '/run/ferry';
export const SOCKET_FILE = 'replica.sock';

export interface ContainerReplicaOptions {
  runtime: ContainerRuntime;
  limits: ContainerLimits;
  stateDir: string;
  /** The deployment's log folder. */
  logDir: string;
  revision: string;
}

export function containerPaths(stateDir: string) {
  return {
    sockets: path.join(stateDir, 'gateway', 'sockets'),
    bundles: path.join(stateDir, 'gateway', 'containers'),
  };
}

/** Starts a replica of `plan` (which must have `container`) as a container; resolves once it runs. */
export async function spawnContainerReplica(plan: LaunchPlan, opts: ContainerReplicaOptions): Promise<Replica> {
  const launch = plan.container;
  if (!launch) throw new Error(`plan ${plan.key} has no container image to run`);
  const name = `c-${randomBytes(6).toString('hex')}`;
  const paths = containerPaths(opts.stateDir);
  const socketDir = path.join(paths.sockets, name);
  const hostSocket = path.join(socketDir, SOCKET_FILE);
  const useSocket = plan.socket === true && Buffer.byteLength(hostSocket) <= MAX_SOCKET_PATH;
  const port = useSocket ? 0 : await freePort();
  await mkdir(socketDir, { recursive: true, mode: 0o700 });
  await mkdir(opts.logDir, { recursive: true });
  await pruneLogs(opts.logDir);
  const startedAt = new Date();
  const logFile = path.join(opts.logDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}-${name}.log`);
  let container: Container;
  try {
    container = await runContainer({
      rootfs: launch.rootfs,
      image: launch.config,
      limits: opts.limits,
      bindMounts: [{ hostPath: socketDir, containerPath: SOCKET_DIR_IN_CONTAINER, ownedByContainer: true }],
      env: {
        ...containerHostEnv(),
        ...(useSocket
          ? { FERRY_SOCKET: path.posix.join(SOCKET_DIR_IN_CONTAINER, SOCKET_FILE) }
          : { PORT: String(port), HOST: '127.0.0.1' }),
      },
      runtime: opts.runtime,
      id: `ferry-${name}`,
      bundlesDir: paths.bundles,
      logPath: logFile,
    });
  } catch (err) {
    await rm(socketDir, { recursive: true, force: true });
    throw err;
  }
  const record: StoredReplicaRecord = {
    pid: container.pid,
    port,
    ...(useSocket ? { socketPath: hostSocket } : {}),
    startedAt: startedAt.toISOString(),
    procStartTicks: readProcStartTicks(container.pid),
    logFile,
    planKey: replicaPlanKey(plan),
    revision: opts.revision,
    runtime: opts.runtime.name,
    bundleDir: container.bundleDir,
    rootfs: launch.rootfs,
  };
  return new Replica(record, undefined, container);
}

/**
 * The container of a replica recorded by a previous gateway, if it still runs as that replica;
 * otherwise whatever is left of it (runtime state, cgroup, bundle, socket folder) is removed.
 */
export async function adoptContainerReplica(record: StoredReplicaRecord): Promise<Replica | undefined> {
  const socketDir = record.socketPath ? path.dirname(record.socketPath) : undefined;
  const forget = async () => {
    if (socketDir) await rm(socketDir, { recursive: true, force: true });
    return undefined;
  };
  if (!record.bundleDir) return forget();
  let container: Container;
  try {
    container = await Container.open(record.bundleDir);
  } catch {
    return forget();
  }
  const state = await container.state().catch(() => null);
  if (state?.status === 'running' && container.pid === record.pid) return new Replica(record, undefined, container);
  await container.remove().catch(() => undefined);
  return forget();
}

/** The replica a standby container (standbyContainer.ts) became once it took its command. */
export function containerReplicaFromStandby(taken: TakenStandbyContainer, plan: LaunchPlan, revision: string): Replica {
  const { container } = taken;
  const record: StoredReplicaRecord = {
    pid: container.pid,
    port: 0,
    socketPath: taken.socketPath,
    startedAt: new Date().toISOString(),
    procStartTicks: readProcStartTicks(container.pid),
    logFile: taken.logFile,
    planKey: replicaPlanKey(plan),
    revision,
    runtime: taken.runtime.name,
    bundleDir: container.bundleDir,
    rootfs: taken.rootfs,
  };
  const replica = new Replica(record, undefined, container);
  replica.prestarted = true;
  return replica;
}

/**
 * Removes the containers under the gateway's bundle folder, and the containers' socket folders, that
 * no live replica record names: a standby container of a gateway that crashed, or a replica whose
 * start was cut short. Resolves to the containers' ids.
 */
export async function removeOrphanContainers(
  stateDir: string,
  live: readonly StoredReplicaRecord[],
): Promise<string[]> {
  const { bundles, sockets } = containerPaths(stateDir);
  const knownBundles = new Set(live.flatMap((r) => r.bundleDir ?? []));
  const knownSockets = new Set(live.flatMap((r) => (r.socketPath ? [path.dirname(r.socketPath)] : [])));
  const removed: string[] = [];
  for (const name of await readdir(bundles).catch(() => [] as string[])) {
    const bundleDir = path.join(bundles, name);
    if (knownBundles.has(bundleDir)) continue;
    const container = await Container.open(bundleDir).catch(() => undefined);
    await container?.remove().catch(() => undefined);
    await rm(bundleDir, { recursive: true, force: true });
    removed.push(name);
  }
  for (const name of await readdir(sockets).catch(() => [] as string[])) {
    const dir = path.join(sockets, name);
    if (name.startsWith('c-') && !knownSockets.has(dir)) await rm(dir, { recursive: true, force: true });
  }
  return removed;
}
