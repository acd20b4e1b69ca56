/**
 * The user a container runs as: the image config's `User` ("name", "uid", "name:group", "uid:gid")
 * resolved against the image's own /etc/passwd and /etc/group, like Docker does, plus the
 * supplementary groups /etc/group lists the user in. Ferry never runs a container as root.
 */
import { readFile, realpath } from 'node:fs/promises';
import * as path from 'node:path';

export interface ContainerUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** From the passwd entry, when there is one: the default $HOME. */
  home?: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const NUMERIC = /^\d+$/;

/** Reads `<rootfs>/<file>` if it exists and stays inside the rootfs once symlinks are followed. */
async function readImageFile(rootfs: string, file: string): Promise<string | undefined> {
  const root = await realpath(rootfs);
  let real: string;
  try {
    real = await realpath(path.join(root, file));
  } catch {
    return undefined;
  }
  // An image's /etc/passwd that links out of the image must not make us read the host's.
  if (real !== root && !real.startsWith(`${root}${path.sep}`)) return undefined;
  return readFile(real, 'utf8');
}

export function parsePasswd(text: string): PasswdEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 7 || !NUMERIC.test(f[2]!) || !NUMERIC.test(f[3]!)) return [];
    return [{ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! }];
  });
}

export function parseGroup(text: string): GroupEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 4 || !NUMERIC.test(f[2]!)) return [];
    return [{ name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').filter(Boolean) }];
  });
}

/** Resolves `user` (an image config's User) against the passwd and group files' contents. */
export function resolveUser(user: string, passwdText: string, groupText: string): ContainerUser {
  const [userPart = '', groupPart] = user.trim().split(':', 2);
  if (userPart === '') throw new Error('the image sets no User: Ferry runs containers only as a non-root user');
  const passwd = parsePasswd(passwdText);
  const groups = parseGroup(groupText);
  const entry = NUMERIC.test(userPart)
    ? passwd.find((p) => p.uid === Number(userPart))
    : passwd.find((p) => p.name === userPart);
  if (!entry && !NUMERIC.test(userPart)) throw new Error(`user "${userPart}" is not in the image's /etc/passwd`);
  const uid = entry ? entry.uid : Number(userPart);

  let gid: number;
  if (groupPart === undefined || groupPart === '') {
    // Docker gives a numeric uid without a passwd entry gid 0 (root's group); we ask for the group instead.
    if (!entry) throw new Error(`uid ${uid} has no /etc/passwd entry in the image: give the group as "${uid}:<gid>"`);
    gid = entry.gid;
  } else if (NUMERIC.test(groupPart)) {
    gid = Number(groupPart);
  } else {
    const g = groups.find((x) => x.name === groupPart);
    if (!g) throw new Error(`group "${groupPart}" is not in the image's /etc/group`);
    gid = g.gid;
  }
  if (uid === 0 || gid === 0) {
    throw new Error(
      `the image's User "${user}" is root (uid ${uid}, gid ${gid}): Ferry runs containers only as non-root`,
    );
  }
  const name = entry?.name;
  // Supplementary groups as /etc/group lists them, except root's group (never granted, not even this way).
  const member = (g: GroupEntry) => name !== undefined && g.members.includes(name) && g.gid !== gid && g.gid !== 0;
  const additionalGids = [...new Set(groups.filter(member).map((g) => g.gid))];
  return { uid, gid, additionalGids, ...(entry?.home ? { home: entry.home } : {}) };
}

/** Resolves the image config's `User` against the unpacked image at `rootfs`. */
export async function imageUser(rootfs: string, user: string | undefined): Promise<ContainerUser> {
  const passwd = (await readImageFile(rootfs, 'etc/passwd')) ?? '';
  const group = (await readImageFile(rootfs, 'etc/group')) ?? '';
  return resolveUser(user ?? '', passwd, group);
}
