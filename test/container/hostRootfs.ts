/**
 * A container root filesystem made for the tests from this host's own binaries (amd64 or arm64 host,
 * tests only): Debian's static busybox for shell commands and the host's node with the shared
 * libraries `ldd` lists, plus /etc/passwd and /etc/group with a non-root user.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { chmod, copyFile, link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

export const TEST_USER = { name: 'ferry', uid: 10001, gid: 10001 };
/** A supplementary group the user is a member of, to see additionalGids reach the process. */
export const TEST_EXTRA_GROUP = { name: 'models', gid: 10002 };
const BUSYBOX = '/bin/busybox';

/** Hard link when on the same filesystem (no copy of node's ~100 MB), else copy. */
async function place(source: string, dest: string): Promise<void> {
  await mkdir(path.dirname(dest), { recursive: true });
  await link(source, dest).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EXDEV' && err.code !== 'EPERM') throw err;
    await copyFile(source, dest);
  });
}

/** The shared libraries of `binary`, and its dynamic loader, as absolute host paths. */
function sharedLibraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  return [...out.matchAll(/(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
}

export interface HostRootfs {
  dir: string;
  rootfs: string;
  remove(): Promise<void>;
}

export async function makeHostRootfs(): Promise<HostRootfs> {
  if (!existsSync(BUSYBOX)) {
    throw new Error(
      `${BUSYBOX} is missing: run \`bash infra/install-container-runtime.sh\` (it installs busybox-static)`,
    );
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-rootfs-'));
  const rootfs = path.join(dir, 'rootfs');
  await place(BUSYBOX, path.join(rootfs, 'bin', 'busybox'));
  for (const applet of ['sh', 'id', 'cat', 'touch', 'sleep', 'unshare', 'head', 'tr', 'grep']) {
    await symlink('busybox', path.join(rootfs, 'bin', applet));
  }
  const node = realpathSync(process.execPath);
  await place(node, path.join(rootfs, 'usr', 'bin', 'node'));
  for (const lib of sharedLibraries(node)) await place(realpathSync(lib), path.join(rootfs, lib));
  const { name, uid, gid } = TEST_USER;
  await mkdir(path.join(rootfs, 'etc'), { recursive: true });
  await writeFile(
    path.join(rootfs, 'etc', 'passwd'),
    `root:x:0:0::/root:/bin/sh\n${name}:x:${uid}:${gid}::/home/${name}:/bin/sh\n`,
  );
  await writeFile(
    path.join(rootfs, 'etc', 'group'),
    `root:x:0:\n${name}:x:${gid}:\n${TEST_EXTRA_GROUP.name}:x:${TEST_EXTRA_GROUP.gid}:${name}\n`,
  );
  await chmod(rootfs, 0o755);
  // No /tmp: Container.run must make it (mode 1777) whichever runtime starts first.
  return { dir, rootfs, remove: () => rm(dir, { recursive: true, force: true }) };
}
