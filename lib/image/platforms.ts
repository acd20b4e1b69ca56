/**
 * The architectures Ferry images are built for, and where each one's inputs come from.
 *
 *   amd64  the host's own Debian packages: nodejs's /usr/bin/node, libc6, libstdc++6, libgcc-s1 under /
 *   arm64  the same packages for arm64, unpacked by infra/install-image-deps.sh into
 *          <cacheDir>/image-deps/arm64/root (its header says where that node binary comes from)
 *
 * An arm64 input is never taken from the host: every ELF file is checked against the platform's machine
 * (sharedLibraries.ts), so a host library cannot slip into an arm64 image.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ferryChildEnv, loadConfig } from '../config';
import { hostArchitecture } from '../oci/image';
import { ELF_MACHINE } from './elf';

const run = promisify(execFile);

export type ImageArchitecture = 'amd64' | 'arm64';

/** What the container stage builds: one image index with both. */
export const IMAGE_ARCHITECTURES: readonly ImageArchitecture[] = ['amd64', 'arm64'];

export interface ImagePlatform {
  /** OCI/Go name: image config `architecture`, index `platform.architecture`. */
  architecture: ImageArchitecture;
  /** Node's process.arch: onnxruntime-node's bin/napi-v6/linux/<nodeArch> folder. */
  nodeArch: 'x64' | 'arm64';
  /** Debian's multiarch triplet: libraries go in /lib/<triplet> in the image. */
  triplet: string;
  /** ELF e_machine every binary of this platform must have. */
  elfMachine: number;
  /** Root of this architecture's unpacked Debian packages ('/' for the host's own). */
  sysroot: string;
  /** The node binary, as a path inside sysroot. */
  nodeBinary: string;
  /** binutils' strip for this architecture's ELF files. */
  strip: string;
}

export function imageDepsDir(cacheDir = loadConfig().cacheDir): string {
  return path.join(cacheDir, 'image-deps');
}

export function imagePlatform(architecture: ImageArchitecture): ImagePlatform {
  if (architecture === 'amd64') {
    if (hostArchitecture() !== 'amd64') {
      throw new Error(`amd64 images are built from the host's own packages, and this host is ${hostArchitecture()}`);
    }
    return {
      architecture,
      nodeArch: 'x64',
      triplet: 'x86_64-linux-gnu',
      elfMachine: ELF_MACHINE.x86_64,
      sysroot: '/',
      nodeBinary: '/usr/bin/node',
      strip: 'strip',
    };
  }
  if (architecture === 'arm64') {
    return {
      architecture,
      nodeArch: 'arm64',
      triplet: 'aarch64-linux-gnu',
      elfMachine: ELF_MACHINE.aarch64,
      sysroot: path.join(imageDepsDir(), 'arm64', 'root'),
      nodeBinary: '/usr/bin/node',
      strip: 'aarch64-linux-gnu-strip',
    };
  }
  throw new Error(`unknown image architecture "${architecture as string}" (amd64 or arm64)`);
}

/** Where a path inside the platform's sysroot is on this machine. */
export function inSysroot(platform: ImagePlatform, p: string): string {
  return path.join(platform.sysroot, p);
}

async function hasCommand(name: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${name}`]).then(
    () => true,
    () => false,
  );
}

function inputsPresent(platform: ImagePlatform): Promise<boolean> {
  if (!existsSync(inSysroot(platform, platform.nodeBinary))) return Promise.resolve(false);
  if (platform.architecture === 'arm64' && !existsSync(path.join(imageDepsDir(), 'arm64', 'inputs.txt'))) {
    return Promise.resolve(false);
  }
  return hasCommand(platform.strip);
}

const installs = new Map<string, Promise<void>>();

/**
 * Makes sure the platform's inputs are on this machine, running infra/install-image-deps.sh (once per
 * process) when they are not: apt-get download and dpkg-deb -x into the cache, strip tools.
 */
export async function ensurePlatformInputs(platform: ImagePlatform): Promise<void> {
  if (await inputsPresent(platform)) return;
  const config = loadConfig();
  let install = installs.get(config.cacheDir);
  if (!install) {
    const script = path.join(config.repoRoot, 'infra', 'install-image-deps.sh');
    install = run('bash', [script], {
      env: ferryChildEnv({ FERRY_CACHE_DIR: config.cacheDir }),
      maxBuffer: 16 << 20,
    }).then(
      () => undefined,
      (error: { stdout?: string; stderr?: string; message: string }) => {
        installs.delete(config.cacheDir);
        const tail = `${error.stdout ?? ''}${error.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
        throw new Error(`installing the image inputs (bash ${script}) failed:\n${tail || error.message}`);
      },
    );
    installs.set(config.cacheDir, install);
  }
  await install;
  if (!(await inputsPresent(platform))) {
    throw new Error(
      `${platform.architecture} image inputs are still missing after infra/install-image-deps.sh ` +
        `(${inSysroot(platform, platform.nodeBinary)}, ${platform.strip})`,
    );
  }
}
