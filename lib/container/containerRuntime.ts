/**
 * The OCI runtimes Ferry runs containers with — youki (preferred, the Rust runtime) and runc (the
 * fallback) — found on this machine, and their command lines: start, state, kill, delete. `create`
 * is run by the container monitor (containerMonitor.ts), which must be the container's parent.
 *
 * Each runtime keeps its containers' state under its own root (`--root`), so Ferry's containers are
 * apart from any other user of the same runtime.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { type FerryConfig, loadConfig, type ReplicaRuntimeSetting } from '../config';

const execFileP = promisify(execFile);

export const RUNTIME_NAMES = ['youki', 'runc'] as const;
export type RuntimeName = (typeof RUNTIME_NAMES)[number];

export interface ContainerRuntime {
  name: RuntimeName;
  /** Absolute path of the binary. */
  path: string;
  /** First line of `<runtime> --version`, e.g. "youki version 0.7.0". */
  version: string;
  /** The runtime's state directory for Ferry's containers (`--root`). */
  root: string;
}

export interface ContainerState {
  status: 'creating' | 'created' | 'running' | 'stopped' | 'paused';
  pid: number;
}

export class RuntimeNotFoundError extends Error {}

const INSTALL_HINT = 'run `bash infra/install-container-runtime.sh` (or `bash infra/stack.sh install`)';
const DEFAULT_STATE_ROOT = '/run/ferry';
/** A runtime command that takes longer than this is stuck (create is not run from here). */
const COMMAND_TIMEOUT_MS = 30_000;

async function isExecutable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** Where the runtime binaries are looked for: config.replicas.binaries, config.cacheDir, config.searchPath. */
export type BinarySearch = Pick<FerryConfig, 'cacheDir' | 'searchPath'> & {
  replicas: Pick<FerryConfig['replicas'], 'binaries'>;
};

/** Where to look for `name`, in order: its FERRY_<NAME>_BIN variable, Ferry's cache (youki), then PATH. */
export function runtimeCandidates(name: string, search: BinarySearch = loadConfig()): string[] {
  const given = search.replicas.binaries[name];
  // sbin directories too: Debian installs runc in /usr/sbin, which a non-login shell may not have on PATH.
  const dirs = [...new Set([...search.searchPath, '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin'])];
  return [
    ...(given ? [given] : []),
    ...(name === 'youki' ? [path.join(search.cacheDir, 'bin', 'youki')] : []),
    ...dirs.map((d) => path.join(d, name)),
  ];
}

/** Finds an executable among `runtimeCandidates(name)`, or throws saying where it looked. */
export async function locateBinary(name: string, search?: BinarySearch): Promise<string> {
  const candidates = runtimeCandidates(name, search);
  for (const file of candidates) if (await isExecutable(file)) return path.resolve(file);
  throw new RuntimeNotFoundError(`${name} is not installed: ${INSTALL_HINT} (looked for ${candidates.join(', ')})`);
}

/** Finds runtime `name` and checks that it runs. */
export async function findRuntime(
  name: RuntimeName,
  opts: { search?: BinarySearch; stateRoot?: string } = {},
): Promise<ContainerRuntime> {
  const bin = await locateBinary(name, opts.search);
  let version: string;
  try {
    version = (await execFileP(bin, ['--version'], { timeout: COMMAND_TIMEOUT_MS })).stdout.split('\n')[0]!.trim();
  } catch (err) {
    throw new RuntimeNotFoundError(`${bin} does not run (${(err as Error).message.trim()}): ${INSTALL_HINT}`);
  }
  return { name, path: bin, version, root: path.join(opts.stateRoot ?? DEFAULT_STATE_ROOT, name) };
}

/**
 * The runtime to use: FERRY_CONTAINER_RUNTIME (youki | runc) when set, else youki when installed,
 * else runc. (FERRY_CONTAINER_RUNTIME=process, lib/config.ts, means no container: refused here.)
 */
export async function preferredRuntime(
  opts: { setting?: ReplicaRuntimeSetting; search?: BinarySearch; stateRoot?: string } = {},
) {
  // lib/config.ts has checked the setting's value.
  const forced = opts.setting ?? loadConfig().replicas.runtime;
  if (forced === 'process') {
    throw new RuntimeNotFoundError('FERRY_CONTAINER_RUNTIME=process: plain processes, no container runtime');
  }
  if (forced !== 'auto') return findRuntime(forced, opts);
  try {
    return await findRuntime('youki', opts);
  } catch (err) {
    if (!(err instanceof RuntimeNotFoundError)) throw err;
    return findRuntime('runc', opts);
  }
}

/** Runs `<runtime> --root <root> ...args`; a failure carries the runtime's stderr. */
export async function runtimeCommand(rt: ContainerRuntime, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(rt.path, ['--root', rt.root, ...args], {
      timeout: COMMAND_TIMEOUT_MS,
      maxBuffer: 8 << 20,
    });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    const detail = (e.stderr ?? '').trim() || e.message;
    throw new Error(`${rt.name} ${args.join(' ')} failed: ${detail}`);
  }
}

export async function startContainerProcess(rt: ContainerRuntime, id: string): Promise<void> {
  await runtimeCommand(rt, ['start', id]);
}

/** The container's state, or null when the runtime does not know it. */
export async function containerState(rt: ContainerRuntime, id: string): Promise<ContainerState | null> {
  // Both runtimes keep one folder per container under their root: none means the runtime does not know it
  // (asked first, so an unknown container is not told apart by the wording of the runtime's error).
  if (!existsSync(path.join(rt.root, id))) return null;
  const state = JSON.parse(await runtimeCommand(rt, ['state', id])) as ContainerState;
  return { status: state.status, pid: state.pid };
}

/** Sends `signal` (a name like SIGTERM) to the container's init process. */
export async function killContainer(rt: ContainerRuntime, id: string, signal: NodeJS.Signals): Promise<void> {
  await runtimeCommand(rt, ['kill', id, signal]);
}

/** Kills (SIGKILL) whatever still runs and removes the container, its runtime state and its cgroup. */
export async function deleteContainer(rt: ContainerRuntime, id: string): Promise<void> {
  await runtimeCommand(rt, ['delete', '--force', id]);
}
