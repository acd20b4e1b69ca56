/**
 * The OCI runtime config.json of one Ferry container: a pure function of the run request.
 *
 * What every container gets, whatever the request says:
 *   - the image's rootfs mounted read-only, with a private tmpfs on /tmp;
 *   - the image's non-root user (resolved by imageUser.ts; root is refused there), no capabilities in
 *     any set, `noNewPrivileges`, and the seccomp allowlist of seccompProfile.ts;
 *   - memory limit with memory+swap equal to it (no swap), CPU quota per period, a pids limit, and a
 *     device allowlist of the usual character devices;
 *   - its own pid, IPC, UTS and mount namespaces. Phase 1 keeps the host network namespace: a replica
 *     listens on a Unix socket in a bind-mounted host folder (FERRY_SOCKET), which needs no network,
 *     and the gateway reaches it through that folder.
 */
import type { OciImageConfig } from '../oci/image';
import type { ContainerUser } from './imageUser';
import type { OciMount, OciRuntimeSpec } from './ociRuntimeSpec';
import { type SeccompArchitecture, seccompProfile } from './seccompProfile';

export const CPU_PERIOD_US = 100_000;
/** The kernel refuses a CFS quota under 1 ms. */
const MIN_CPU_QUOTA_US = 1_000;
/** Below this, runtimes fail to even start the container's init. */
export const MIN_MEMORY_BYTES = 8 << 20;
export const DEFAULT_PIDS_LIMIT = 512;
export const DEFAULT_TMPFS_BYTES = 64 << 20;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface ContainerLimits {
  /** CPUs' worth of time per period, e.g. 0.5. */
  cpus: number;
  memoryBytes: number;
  /** Processes and threads together; default DEFAULT_PIDS_LIMIT. */
  pids?: number;
}

export interface BindMount {
  hostPath: string;
  containerPath: string;
  readOnly?: boolean;
}

export interface BundleSpecInput {
  /** The container's id with the runtime: [A-Za-z0-9_.-], at most 64 characters. */
  id: string;
  /** Absolute path of the unpacked image root filesystem (shared read-only between containers). */
  rootfs: string;
  image: Pick<OciImageConfig['config'], 'Entrypoint' | 'Cmd' | 'Env' | 'WorkingDir'>;
  user: ContainerUser;
  limits: ContainerLimits;
  bindMounts?: readonly BindMount[];
  /** Added to (and overriding) the image's Env. */
  env?: Readonly<Record<string, string>>;
  /** Replaces the image's Cmd (the Entrypoint stays), as `docker run IMAGE ARGS...` does. */
  args?: readonly string[];
  /**
   * Clamped at 0: a negative value needs CAP_SYS_RESOURCE, which the runtime may not have (this
   * machine's root lacks it: the runtime then fails with EPERM), and a replica must never be
   * protected from the OOM killer ahead of the control plane. Absent: inherited from the runtime.
   */
  oomScoreAdj?: number;
  /** The cgroup path below each hierarchy's root, e.g. /ferry/<id>. */
  cgroupsPath: string;
  arch: SeccompArchitecture;
  /** Whether the host accounts swap in cgroups (memory.memsw.* / memory.swap.max); if not, no swap limit. */
  swapAccounting: boolean;
  tmpfsBytes?: number;
}

function envList(image: readonly string[] | undefined, extra: Readonly<Record<string, string>>, home?: string) {
  const env = new Map<string, string>();
  for (const kv of image ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  for (const [k, v] of Object.entries(extra)) {
    if (k === '' || k.includes('=')) throw new Error(`environment variable name "${k}" is not valid`);
    env.set(k, v);
  }
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  if (!env.has('HOME')) env.set('HOME', home ?? '/');
  return [...env].map(([k, v]) => `${k}=${v}`);
}

function checkInput(input: BundleSpecInput): void {
  const { limits } = input;
  if (!CONTAINER_ID.test(input.id)) throw new Error(`container id "${input.id}" is not valid ([A-Za-z0-9_.-]{1,64})`);
  if (!input.rootfs.startsWith('/')) throw new Error(`rootfs "${input.rootfs}" must be an absolute path`);
  if (!input.cgroupsPath.startsWith('/')) throw new Error(`cgroupsPath "${input.cgroupsPath}" must be absolute`);
  if (!(limits.cpus * CPU_PERIOD_US >= MIN_CPU_QUOTA_US) || !Number.isFinite(limits.cpus)) {
    throw new Error(`cpus ${limits.cpus} is not a usable CPU limit (at least ${MIN_CPU_QUOTA_US / CPU_PERIOD_US})`);
  }
  if (!Number.isSafeInteger(limits.memoryBytes) || limits.memoryBytes < MIN_MEMORY_BYTES) {
    throw new Error(`memoryBytes ${limits.memoryBytes} is below the ${MIN_MEMORY_BYTES}-byte minimum`);
  }
  if (limits.pids !== undefined && !(Number.isSafeInteger(limits.pids) && limits.pids > 0)) {
    throw new Error(`pids limit ${limits.pids} must be a positive integer`);
  }
  if (input.user.uid === 0 || input.user.gid === 0) throw new Error('a Ferry container never runs as root');
  for (const b of input.bindMounts ?? []) {
    if (!b.hostPath.startsWith('/') || !b.containerPath.startsWith('/')) {
      throw new Error(`bind mount ${b.hostPath} -> ${b.containerPath}: both paths must be absolute`);
    }
  }
}

export function bundleSpec(input: BundleSpecInput): OciRuntimeSpec {
  checkInput(input);
  const { image, user, limits } = input;
  const entrypoint = image.Entrypoint ?? [];
  const args = [...entrypoint, ...(input.args ?? image.Cmd ?? [])];
  if (args.length === 0) throw new Error('the image has neither Entrypoint nor Cmd, and the request gives no args');

  const tmpfsSize = input.tmpfsBytes ?? DEFAULT_TMPFS_BYTES;
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    // Read-only: lets Node see its own memory limit (libuv reads the cgroup) and nothing more.
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
    },
    {
      destination: '/tmp',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'nodev', 'mode=1777', `size=${tmpfsSize}`],
    },
    ...(input.bindMounts ?? []).map((b) => ({
      destination: b.containerPath,
      type: 'bind',
      source: b.hostPath,
      options: ['rbind', 'nosuid', 'nodev', b.readOnly ? 'ro' : 'rw'],
    })),
  ];

  const chr = (major: number, minor: number) => ({ allow: true, type: 'c' as const, major, minor, access: 'rwm' });
  const oomScoreAdj = input.oomScoreAdj === undefined ? undefined : Math.max(0, Math.round(input.oomScoreAdj));
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: user.uid, gid: user.gid, additionalGids: [...user.additionalGids] },
      args,
      env: envList(image.Env, input.env ?? {}, user.home),
      cwd: image.WorkingDir || '/',
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      noNewPrivileges: true,
      ...(oomScoreAdj === undefined ? {} : { oomScoreAdj }),
    },
    root: { path: input.rootfs, readonly: true },
    hostname: input.id.slice(0, 63),
    mounts,
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      cgroupsPath: input.cgroupsPath,
      resources: {
        devices: [
          { allow: false, access: 'rwm' },
          // null, zero, full, random, urandom, tty, ptmx and the pty slaves
          ...[chr(1, 3), chr(1, 5), chr(1, 7), chr(1, 8), chr(1, 9), chr(5, 0), chr(5, 2)],
          { allow: true, type: 'c', major: 136, access: 'rwm' },
        ],
        memory: {
          limit: limits.memoryBytes,
          ...(input.swapAccounting ? { swap: limits.memoryBytes } : {}),
        },
        cpu: { quota: Math.round(limits.cpus * CPU_PERIOD_US), period: CPU_PERIOD_US },
        pids: { limit: limits.pids ?? DEFAULT_PIDS_LIMIT },
      },
      seccomp: seccompProfile(input.arch),
      maskedPaths: [
        ...['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list'],
        ...['/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap'],
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}
