/** The values `ferry image` flags take: platforms, CPUs, memory sizes, runtimes, registry credentials. */
import { registryCredentialVariables } from '../../lib/config';
import { IMAGE_ARCHITECTURES, type ImageArchitecture } from '../../lib/image/modelImage';
import type { RegistryCredentials } from '../../lib/oci/registry';
import { FerryError } from '../sdk/errors';

/** `linux/amd64,linux/arm64` → ['amd64', 'arm64']; anything Ferry does not build is refused. */
export function parsePlatforms(raw: string | undefined): ImageArchitecture[] {
  if (raw === undefined) return [...IMAGE_ARCHITECTURES];
  const known = IMAGE_ARCHITECTURES.map((a) => `linux/${a}`);
  const out: ImageArchitecture[] = [];
  for (const item of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const index = known.indexOf(item);
    if (index < 0) throw new FerryError(`unknown platform "${item}": Ferry builds ${known.join(' and ')}`);
    const architecture = IMAGE_ARCHITECTURES[index]!;
    if (!out.includes(architecture)) out.push(architecture);
  }
  if (out.length === 0) throw new FerryError(`--platform names no platform (give ${known.join(',')})`);
  return out;
}

const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  Ki: 1 << 10,
  Mi: 1 << 20,
  Gi: 1 << 30,
};

/** `512Mi`, `1Gi`, `300M`, `1073741824` (Kubernetes' quantity suffixes) → bytes. */
export function parseMemory(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(k|M|G|Ki|Mi|Gi)?$/.exec(raw.trim());
  if (!m) throw new FerryError(`--memory must be a size such as 512Mi or 2Gi, got "${raw}"`);
  const bytes = Math.floor(Number(m[1]) * MEMORY_UNITS[m[2] ?? '']!);
  if (bytes < 16 << 20) throw new FerryError(`--memory ${raw} is too little to run a model server (at least 16Mi)`);
  return bytes;
}

export function parseCpus(raw: string): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0.01 || n > 1024) {
    throw new FerryError(`--cpus must be a number of CPUs such as 0.5 or 2, got "${raw}"`);
  }
  return n;
}

export const RUN_RUNTIMES = ['youki', 'runc', 'process'] as const;
export type RunRuntime = (typeof RUN_RUNTIMES)[number];

export function parseRuntime(raw: string | undefined): RunRuntime | undefined {
  if (raw === undefined) return undefined;
  if (!(RUN_RUNTIMES as readonly string[]).includes(raw)) {
    throw new FerryError(`unknown runtime "${raw}": give ${RUN_RUNTIMES.join(', ')}`);
  }
  return raw as RunRuntime;
}

export interface CredentialFlags {
  registryUser?: string;
  registryPassword?: string;
}

/**
 * The flags' credentials, else FERRY_REGISTRY_USER and FERRY_REGISTRY_PASSWORD, for the registry the
 * command names; undefined: none given (the client then sends the configured registry's, if any).
 */
export function registryCredentials(flags: CredentialFlags, env?: NodeJS.ProcessEnv): RegistryCredentials | undefined {
  const variables = registryCredentialVariables(env);
  const username = flags.registryUser ?? variables.username;
  const password = flags.registryPassword ?? variables.password;
  if ((flags.registryUser === undefined) !== (flags.registryPassword === undefined)) {
    throw new FerryError('--registry-user and --registry-password go together: give both or neither');
  }
  if (!username && !password) return undefined;
  if (!username || !password) {
    throw new FerryError('FERRY_REGISTRY_USER and FERRY_REGISTRY_PASSWORD go together: set both or neither');
  }
  return { username, password };
}
