/**
 * The shared libraries a set of ELF files loads, resolved the way glibc's dynamic loader resolves them,
 * against one architecture's sysroot: so an image carries exactly those, nothing guessed.
 *
 * For each DT_NEEDED name, in the loader's order: the directories of the object's DT_RUNPATH (or its
 * DT_RPATH when it has no RUNPATH), with $ORIGIN standing for the object's own folder in the image;
 * then the default folders /lib/<triplet>, /usr/lib/<triplet>, /lib, /usr/lib of the sysroot. A
 * candidate of another machine (or not ELF at all, like libc.so's linker script) is passed over, as the
 * loader does. Libraries from the sysroot go in the image under /lib/<triplet>/<soname> as regular
 * files (the symlink chains of the packages are followed, not copied); the program's interpreter
 * (PT_INTERP) is placed there too, with a relative symlink at the path the program names.
 *
 * Not modelled, because none of Ferry's binaries use them: LD_LIBRARY_PATH, ld.so.cache, DT_RPATH
 * inherited from a loading object, hwcaps subfolders, DT_NEEDED names with a '/'.
 */
import { lstat, readlink } from 'node:fs/promises';
import * as path from 'node:path';
import { type ElfDynamicInfo, NotElfError, readElfDynamicInfo } from './elf';
import type { ImagePlatform } from './platforms';

/** An ELF file that goes into the image: where it will be, and where its bytes are now. */
export interface ImageElf {
  imagePath: string;
  sourcePath: string;
}

export interface ResolvedLibrary extends ImageElf {
  /** The DT_NEEDED name it satisfies. */
  soname: string;
  /** Image paths of the objects that need it. */
  neededBy: string[];
}

export interface ResolvedClosure {
  /** Libraries from the sysroot (the interpreter among them), sorted by image path. */
  libraries: ResolvedLibrary[];
  /** DT_NEEDED names that resolved to one of the given files (e.g. libonnxruntime.so.1 via $ORIGIN). */
  satisfiedByGiven: Array<{ soname: string; imagePath: string }>;
  /** The program's PT_INTERP and the relative symlink to put there (absent when the path is the file). */
  interpreter: { path: string; imagePath: string; symlinkTarget?: string };
}

const MAX_SYMLINK_HOPS = 40;

/**
 * Follows symlinks inside `root` as if it were '/': absolute targets stay inside it. Returns the final
 * path (absolute, relative to root) of a regular file, or null if nothing is there.
 */
export async function realPathInRoot(root: string, p: string): Promise<string | null> {
  let pending = p.split('/').filter((part) => part !== '' && part !== '.');
  let resolved: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, part];
    const onDisk = path.join(root, ...candidate);
    const info = await lstat(onDisk).catch(() => null);
    if (!info) return null;
    if (info.isSymbolicLink()) {
      if (++hops > MAX_SYMLINK_HOPS) throw new Error(`too many symlinks resolving ${p} in ${root}`);
      const target = await readlink(onDisk);
      if (target.startsWith('/')) resolved = [];
      pending = [...target.split('/').filter((t) => t !== '' && t !== '.'), ...pending];
    } else {
      resolved = candidate;
    }
  }
  return `/${resolved.join('/')}`;
}

function defaultDirs(platform: ImagePlatform): string[] {
  return [`/lib/${platform.triplet}`, `/usr/lib/${platform.triplet}`, '/lib', '/usr/lib'];
}

function expandOrigin(dir: string, imagePath: string): string {
  const origin = path.posix.dirname(imagePath);
  return path.posix.normalize(dir.replace(/\$ORIGIN|\$\{ORIGIN\}/g, origin));
}

export async function resolveSharedLibraries(
  platform: ImagePlatform,
  program: ImageElf,
  others: readonly ImageElf[],
): Promise<ResolvedClosure> {
  const machineName = `${platform.architecture} (e_machine ${platform.elfMachine})`;
  const infos = new Map<string, ElfDynamicInfo>();
  const info = async (elf: ImageElf): Promise<ElfDynamicInfo> => {
    let found = infos.get(elf.sourcePath);
    if (!found) {
      found = await readElfDynamicInfo(elf.sourcePath);
      infos.set(elf.sourcePath, found);
    }
    return found;
  };
  /** A sysroot file the loader would accept for this platform: an ELF of the right machine. */
  const acceptable = async (sourcePath: string): Promise<boolean> => {
    try {
      return (await info({ imagePath: '', sourcePath })).machine === platform.elfMachine;
    } catch (error) {
      if (error instanceof NotElfError) return false;
      throw error;
    }
  };

  const given = new Map<string, ImageElf>();
  for (const elf of [program, ...others]) {
    if ((await info(elf)).machine !== platform.elfMachine) {
      throw new Error(
        `${elf.sourcePath} is not a ${machineName} binary: it cannot go into a ${platform.architecture} image`,
      );
    }
    given.set(elf.imagePath, elf);
  }
  const libraries = new Map<string, ResolvedLibrary>();
  const satisfiedByGiven = new Map<string, { soname: string; imagePath: string }>();

  const placeFromSysroot = async (soname: string, sysrootPath: string, by: string): Promise<string | null> => {
    const real = await realPathInRoot(platform.sysroot, sysrootPath);
    if (real === null) return null;
    const sourcePath = path.join(platform.sysroot, real);
    if (!(await acceptable(sourcePath))) return null;
    const imagePath = `/lib/${platform.triplet}/${soname}`;
    const existing = libraries.get(imagePath);
    if (existing) {
      if (existing.sourcePath !== sourcePath) {
        throw new Error(`${imagePath} would be both ${existing.sourcePath} and ${sourcePath}`);
      }
      if (!existing.neededBy.includes(by)) existing.neededBy.push(by);
    } else {
      libraries.set(imagePath, { soname, imagePath, sourcePath, neededBy: [by] });
    }
    return imagePath;
  };

  const queue: ImageElf[] = [program, ...others];
  const visited = new Set<string>();
  while (queue.length > 0) {
    const elf = queue.shift()!;
    if (visited.has(elf.imagePath)) continue;
    visited.add(elf.imagePath);
    const { needed, runpath, rpath } = await info(elf);
    const searchPath = (runpath.length > 0 ? runpath : rpath).map((d) => expandOrigin(d, elf.imagePath));
    for (const soname of needed) {
      if (soname.includes('/')) throw new Error(`${elf.sourcePath} needs "${soname}" by path: not supported`);
      let placed: string | null = null;
      for (const dir of searchPath) {
        const candidate = path.posix.join(dir, soname);
        const fromGiven = given.get(candidate);
        if (fromGiven && (await info(fromGiven)).machine === platform.elfMachine) {
          satisfiedByGiven.set(candidate, { soname, imagePath: candidate });
          placed = candidate;
          break;
        }
      }
      for (const dir of placed ? [] : defaultDirs(platform)) {
        placed = await placeFromSysroot(soname, path.posix.join(dir, soname), elf.imagePath);
        if (placed) {
          queue.push(libraries.get(placed)!);
          break;
        }
      }
      if (!placed) {
        throw new Error(
          `${elf.imagePath} (${elf.sourcePath}) needs ${soname}, found neither in its runpath ` +
            `[${searchPath.join(', ')}] nor in ${defaultDirs(platform).join(', ')} of ${platform.sysroot} ` +
            `for ${machineName}: run infra/install-image-deps.sh`,
        );
      }
    }
  }

  const interpPath = (await info(program)).interpreter;
  if (!interpPath) throw new Error(`${program.sourcePath} has no PT_INTERP: a static binary needs no loader`);
  const interpImagePath = await placeFromSysroot(path.posix.basename(interpPath), interpPath, program.imagePath);
  if (!interpImagePath) {
    throw new Error(`${program.sourcePath} asks for the loader ${interpPath}, which ${platform.sysroot} does not have`);
  }
  const interpreter =
    interpPath === interpImagePath
      ? { path: interpPath, imagePath: interpImagePath }
      : {
          path: interpPath,
          imagePath: interpImagePath,
          symlinkTarget: path.posix.relative(path.posix.dirname(interpPath), interpImagePath),
        };
  const byPath = (a: { imagePath: string }, b: { imagePath: string }) =>
    a.imagePath < b.imagePath ? -1 : a.imagePath > b.imagePath ? 1 : 0;
  return {
    libraries: [...libraries.values()].sort(byPath),
    satisfiedByGiven: [...satisfiedByGiven.values()].sort(byPath),
    interpreter,
  };
}
