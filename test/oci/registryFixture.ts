/**
 * Real registries for the OCI tests (no mocks).
 *
 * `useRegistry()` answers the registry the tests should push to: FERRY_REGISTRY_URL if set (it must
 * be up), else the dev stack's default URL if it answers, else a private Debian `docker-registry`
 * started for this test file. `startPrivateRegistry()` always starts one, for tests that need to
 * reach into its storage (e.g. to corrupt a blob on disk).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../lib/config';
import { freePort } from '../../lib/gateway/replicaProcess';
import { RegistryClient, type RegistryCredentials } from '../../lib/oci/registry';
import { basicAuthorization } from '../../lib/oci/registryAuth';

const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface TestRegistry {
  url: string;
  /** What it wants (the dev stack's registry does), for a client that reaches it by another URL (a proxy). */
  credentials?: RegistryCredentials;
  /** Filesystem storage root when this process started the registry. */
  storageDir?: string;
  stop(): Promise<void>;
}

export { freePort };

async function answers(url: string, statuses = [200]): Promise<boolean> {
  try {
    const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) });
    return statuses.includes(res.status);
  } catch {
    return false;
  }
}

export interface PrivateRegistryOptions {
  /**
   * Lines added to the registry's config.yml under `auth:` (indented two spaces already), e.g. an
   * htpasswd or a token section.
   */
  auth?: string[];
}

export async function startPrivateRegistry(options: PrivateRegistryOptions = {}): Promise<TestRegistry> {
  if (!existsSync(REGISTRY_BIN)) {
    throw new Error(
      `${REGISTRY_BIN} is missing: run "bash infra/stack.sh install" (it installs Debian's docker-registry)`,
    );
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-test-registry-'));
  const port = await freePort();
  const storageDir = path.join(dir, 'data');
  const configPath = path.join(dir, 'config.yml');
  await writeFile(
    configPath,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${storageDir}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(options.auth ? ['auth:', ...options.auth] : []),
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  // A registry with auth answers GET /v2/ with 401 once it is up.
  while (!(await answers(url, options.auth ? [401] : [200]))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      throw new Error(`private docker-registry did not start on ${url}: ${stderr.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    storageDir,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * GET /v2/ succeeds, with the configured credentials when `url` is the configured registry (the dev
 * stack's wants them): it is up and lets Ferry in.
 */
export async function registryAnswers(url: string): Promise<boolean> {
  try {
    await new RegistryClient(url, { timeoutMs: 2000, retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 } }).ping();
    return true;
  } catch {
    return false;
  }
}

export async function useRegistry(): Promise<TestRegistry> {
  const { url: configured, credentials } = loadConfig().registry;
  const stack: TestRegistry = { url: configured, credentials, stop: async () => undefined };
  if (process.env.FERRY_REGISTRY_URL) {
    if (!(await registryAnswers(configured)))
      throw new Error(`FERRY_REGISTRY_URL=${configured} does not answer GET /v2/`);
    return stack;
  }
  if (await registryAnswers(configured)) return stack;
  return startPrivateRegistry();
}

/** The Authorization header for a raw request to `registry`, when it wants credentials. */
export function authHeaders(registry: TestRegistry): Record<string, string> {
  return registry.credentials ? { authorization: basicAuthorization(registry.credentials) } : {};
}

/** A repository name no other test run uses, so results never depend on earlier runs. */
export function uniqueRepository(prefix: string): string {
  return `ferry-test/${prefix}-${process.pid}-${Date.now().toString(36)}`;
}
