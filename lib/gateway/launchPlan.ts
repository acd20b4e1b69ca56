/**
 * How to start one replica of a deployment as a plain process on this machine.
 *
 * For an image: run its Entrypoint + Cmd with the host's node binary, inside the unpacked rootfs.
 * Absolute paths in the arguments, FERRY_MODEL_DIR and WorkingDir are mapped into the rootfs, the
 * way a container's mount namespace would see them. This is the `local` target's isolation level:
 * none beyond the process (runc/Kubernetes targets give real containers).
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';

export interface LaunchPlan {
  /** Identity of what runs: replicas started from another key belong to an older spec. */
  key: string;
  command: string;
  args: string[];
  /** Added to a minimal host environment; PORT and HOST are set per replica. */
  env: Record<string, string>;
  cwd: string;
  /** Manifest digest of the image, when launched from one. */
  digest?: string;
}

/** The parts of a pulled image the gateway needs (lib/oci/pull's PulledImage has these). */
export interface PulledImageForLaunch {
  digest: string;
  config: { config?: { Entrypoint?: string[] | null; Cmd?: string[] | null; Env?: string[] | null; WorkingDir?: string } };
  rootfs: string;
}

const repoRoot = path.resolve(__dirname, '../..');
const NODE_NAMES = new Set(['node', 'nodejs']);
/** Env vars that name paths inside the image. */
const PATH_ENV_VARS = ['FERRY_MODEL_DIR'];

export function launchPlanForImage(image: PulledImageForLaunch): LaunchPlan {
  const cfg = image.config.config ?? {};
  const argv = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])];
  if (argv.length === 0) throw new Error(`image ${image.digest} has no Entrypoint or Cmd to run`);
  if (!NODE_NAMES.has(path.posix.basename(argv[0]))) {
    throw new Error(
      `image ${image.digest} runs "${argv[0]}"; the local target runs node entrypoints only (with this machine's node)`,
    );
  }
  const inRootfs = (p: string) => path.join(image.rootfs, p);
  const env: Record<string, string> = {};
  for (const entry of cfg.Env ?? []) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const name = entry.slice(0, eq);
    const value = entry.slice(eq + 1);
    if (name === 'PATH') continue; // the image's PATH means nothing on the host
    env[name] = PATH_ENV_VARS.includes(name) && path.posix.isAbsolute(value) ? inRootfs(value) : value;
  }
  const args = argv.slice(1).map((arg) => (path.posix.isAbsolute(arg) && existsSync(inRootfs(arg)) ? inRootfs(arg) : arg));
  const workingDir = cfg.WorkingDir && existsSync(inRootfs(cfg.WorkingDir)) ? inRootfs(cfg.WorkingDir) : image.rootfs;
  return { key: `image:${image.digest}`, command: process.execPath, args, env, cwd: workingDir, digest: image.digest };
}

/** Serves a model directory with the repo's own runtime (through tsx): for tests and `ferry serve`-style use. */
export function launchPlanForModelDir(modelDir: string): LaunchPlan {
  const dir = path.resolve(modelDir);
  return {
    key: `dir:${dir}`,
    command: process.execPath,
    args: ['--import', 'tsx', path.join(repoRoot, 'runtime/server/main.ts')],
    env: { FERRY_MODEL_DIR: dir },
    cwd: repoRoot,
  };
}
