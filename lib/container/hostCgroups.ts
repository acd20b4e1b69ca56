/**
 * The host's cgroup hierarchies, read from /proc/self/mountinfo, and the few files Ferry reads in a
 * container's cgroup: the OOM-kill counter (the exit reason), the memory limit and the CPU quota.
 *
 * Three layouts exist: cgroup v1 (one mount per controller), v2 (one unified mount) and the hybrid of
 * both (v1 controllers plus an empty cgroup2 mount at /sys/fs/cgroup/unified), which this machine
 * runs. In hybrid mode every controller is on v1, so the limits and counters are read there.
 */
import { readFile, rmdir } from 'node:fs/promises';
import * as path from 'node:path';

export type CgroupMode = 'v1' | 'v2' | 'hybrid';

interface HierarchyMount {
  mountPoint: string;
  /** The hierarchy path the mount shows (not "/" inside a cgroup namespace or a bind mount). */
  root: string;
}

/** Parses /proc/self/mountinfo text. */
export function parseCgroupMounts(mountinfo: string): { v1: Map<string, HierarchyMount>; v2?: HierarchyMount } {
  const v1 = new Map<string, HierarchyMount>();
  let v2: HierarchyMount | undefined;
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const [fstype, , superOptions = ''] = line.slice(sep + 3).split(' ');
    const mount = { root: left[3] ?? '/', mountPoint: (left[4] ?? '').replace(/\\040/g, ' ') };
    if (fstype === 'cgroup2') v2 ??= mount;
    else if (fstype === 'cgroup') {
      for (const opt of superOptions.split(',')) {
        if (opt !== 'rw' && opt !== 'ro' && !v1.has(opt)) v1.set(opt, mount);
      }
    }
  }
  return { v1, ...(v2 ? { v2 } : {}) };
}

function dirIn(mount: HierarchyMount, cgroupPath: string): string {
  const rel = path.posix.relative(mount.root, cgroupPath);
  if (rel.startsWith('..'))
    throw new Error(`cgroup ${cgroupPath} is outside the hierarchy mounted at ${mount.mountPoint}`);
  return path.join(mount.mountPoint, rel);
}

export class HostCgroups {
  private constructor(
    private readonly v1: Map<string, HierarchyMount>,
    private readonly v2: HierarchyMount | undefined,
  ) {}

  static fromMountinfo(mountinfo: string): HostCgroups {
    const { v1, v2 } = parseCgroupMounts(mountinfo);
    if (v1.size === 0 && !v2) throw new Error('no cgroup hierarchy is mounted (see /proc/self/mountinfo)');
    return new HostCgroups(v1, v2);
  }

  static async read(): Promise<HostCgroups> {
    return HostCgroups.fromMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
  }

  get mode(): CgroupMode {
    if (this.v1.size === 0) return 'v2';
    return this.v2 ? 'hybrid' : 'v1';
  }

  /** The directory of `cgroupPath` for `controller` (v1) or in the unified hierarchy (v2). */
  controllerDir(controller: 'memory' | 'cpu' | 'pids', cgroupPath: string): string {
    const v1 = this.v1.get(controller);
    if (v1) return dirIn(v1, cgroupPath);
    if (this.v2 && this.v1.size === 0) return dirIn(this.v2, cgroupPath);
    throw new Error(`the ${controller} controller is not mounted`);
  }

  /** Every directory a runtime may have made for `cgroupPath`, one per mounted hierarchy. */
  allDirs(cgroupPath: string): string[] {
    const mounts = [...new Set([...this.v1.values(), ...(this.v2 ? [this.v2] : [])])];
    return [...new Set(mounts.map((m) => dirIn(m, cgroupPath)))];
  }

  /** Whether memory+swap can be limited (v1 memsw files; v2 memory.swap.max below the root). */
  async swapAccounting(): Promise<boolean> {
    const probe = this.v1.has('memory')
      ? path.join(this.controllerDir('memory', '/'), 'memory.memsw.limit_in_bytes')
      : path.join(this.controllerDir('memory', await ownV2Cgroup()), 'memory.swap.max');
    return readFile(probe, 'utf8').then(
      () => true,
      () => false,
    );
  }

  /** How many processes the kernel's OOM killer killed in this cgroup. */
  async oomKills(cgroupPath: string): Promise<number> {
    const dir = this.controllerDir('memory', cgroupPath);
    const file = this.v1.has('memory') ? 'memory.oom_control' : 'memory.events';
    const text = await readFile(path.join(dir, file), 'utf8');
    const m = /^oom_kill (\d+)$/m.exec(text);
    if (!m) throw new Error(`${path.join(dir, file)} has no oom_kill line (kernel older than 4.13?)`);
    return Number(m[1]);
  }

  async memoryLimit(cgroupPath: string): Promise<number | 'max'> {
    const dir = this.controllerDir('memory', cgroupPath);
    const text = (
      await readFile(path.join(dir, this.v1.has('memory') ? 'memory.limit_in_bytes' : 'memory.max'), 'utf8')
    ).trim();
    return text === 'max' ? 'max' : Number(text);
  }

  /** CFS quota and period in microseconds (quota 'max' when unlimited). */
  async cpuQuota(cgroupPath: string): Promise<{ quotaUs: number | 'max'; periodUs: number }> {
    const dir = this.controllerDir('cpu', cgroupPath);
    if (this.v1.has('cpu')) {
      const quota = Number((await readFile(path.join(dir, 'cpu.cfs_quota_us'), 'utf8')).trim());
      const period = Number((await readFile(path.join(dir, 'cpu.cfs_period_us'), 'utf8')).trim());
      return { quotaUs: quota < 0 ? 'max' : quota, periodUs: period };
    }
    const [quota = 'max', period = '100000'] = (await readFile(path.join(dir, 'cpu.max'), 'utf8')).trim().split(' ');
    return { quotaUs: quota === 'max' ? 'max' : Number(quota), periodUs: Number(period) };
  }

  async pidsLimit(cgroupPath: string): Promise<number | 'max'> {
    const text = (await readFile(path.join(this.controllerDir('pids', cgroupPath), 'pids.max'), 'utf8')).trim();
    return text === 'max' ? 'max' : Number(text);
  }

  /**
   * Removes what is left of `cgroupPath` in every hierarchy (a runtime's delete normally does it;
   * this catches a runtime that died half-way). Returns the directories that could not be removed.
   */
  async remove(cgroupPath: string): Promise<string[]> {
    const left: string[] = [];
    for (const dir of this.allDirs(cgroupPath)) {
      await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') left.push(`${dir} (${err.code})`);
      });
    }
    return left;
  }
}

/** This process's own cgroup in the unified hierarchy ("0::<path>" in /proc/self/cgroup). */
async function ownV2Cgroup(): Promise<string> {
  const m = /^0::(.*)$/m.exec(await readFile('/proc/self/cgroup', 'utf8'));
  return m?.[1] || '/';
}
