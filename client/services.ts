/**
 * Ferry's own long-running processes on this machine — the pipeline worker, the gateway (the local
 * deployment target) and the HTTP API with the dashboard — started in the background with pid and
 * log files under the state dir, health-checked, and stopped by pid. Idempotent, like infra/stack.sh.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  type Stats,
  statSync,
  writeFileSync,
} from 'node:fs';
import * as path from 'node:path';
import { type FerryConfig, ferryChildEnv } from '../lib/config';

export type FerryService = 'worker' | 'gateway' | 'api';
export const FERRY_SERVICES: FerryService[] = ['gateway', 'worker', 'api'];

interface ServiceSpec {
  args: string[];
  ready: (cfg: FerryConfig, logFile: string) => Promise<boolean>;
}

const tsx = (script: string, ...rest: string[]) => ['--import', 'tsx', script, ...rest];

const specs: Record<FerryService, (cfg: FerryConfig) => ServiceSpec> = {
  worker: (cfg) => ({
    args: tsx(path.join(cfg.repoRoot, 'workers/main.ts')),
    ready: async (_c, log) => existsSync(log) && readFileSync(log, 'utf8').includes('ferry worker: task queue'),
  }),
  gateway: (cfg) => ({
    args: tsx(path.join(cfg.repoRoot, 'client/cli/main.ts'), 'gateway'),
    // The public health route: with auth on, the deployments listing wants a key.
    ready: (c) => httpOk(`${c.gateway.url}/_ferry/health`),
  }),
  api: (cfg) => ({
    args: tsx(path.join(cfg.repoRoot, 'client/cli/main.ts'), 'api'),
    ready: (c) => httpOk(`${c.api.url}/healthz`),
  }),
};

function serviceDir(cfg: FerryConfig): string {
  const dir = path.join(cfg.stateDir, 'ferry');
  mkdirSync(dir, { recursive: true });
  return dir;
}

function pidOf(cfg: FerryConfig, name: FerryService): number | undefined {
  const file = path.join(serviceDir(cfg), `${name}.pid`);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return pid > 0 && isAlive(pid) ? pid : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

/** What the services run: their sources and the installed packages. */
const CODE_ROOTS = ['workflows', 'activities', 'workers', 'client', 'lib', 'runtime', 'package-lock.json'];

/**
 * A fingerprint of the code a service would run now: path, size and modification time of every source
 * file (cheap: no file is read). A running service started from other code is restarted by startService,
 * so `ferry up` (and the demo) after a `git pull` or an edit does not keep serving the old code.
 */
export function codeFingerprint(repoRoot: string): string {
  const hash = createHash('sha256');
  const visit = (rel: string) => {
    const abs = path.join(repoRoot, rel);
    let st: Stats;
    try {
      st = statSync(abs);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const entry of readdirSync(abs).sort())
        if (entry !== 'node_modules' && !entry.startsWith('.')) visit(path.join(rel, entry));
    } else {
      hash.update(`${rel}\0${st.size}\0${st.mtimeMs}\n`);
    }
  };
  for (const root of CODE_ROOTS) visit(root);
  return hash.digest('hex').slice(0, 16);
}

export interface StartedService {
  pid: number;
  started: boolean;
  /** Set when a running instance was replaced because its code changed since it started. */
  restartedBecause?: string;
}

/** One line for the console: `ferry gateway: started (pid 123)`. */
export function describeStart(name: FerryService, r: StartedService): string {
  const what = r.restartedBecause ? `restarted (${r.restartedBecause})` : r.started ? 'started' : 'already running';
  return `ferry ${name}: ${what} (pid ${r.pid})`;
}

export async function startService(cfg: FerryConfig, name: FerryService, timeoutMs = 60_000): Promise<StartedService> {
  const spec = specs[name](cfg);
  const logFile = path.join(serviceDir(cfg), `${name}.log`);
  const codeFile = path.join(serviceDir(cfg), `${name}.code`);
  const code = codeFingerprint(cfg.repoRoot);
  const existing = pidOf(cfg, name);
  let restartedBecause: string | undefined;
  if (existing && (await spec.ready(cfg, logFile))) {
    const runningCode = existsSync(codeFile) ? readFileSync(codeFile, 'utf8').trim() : '';
    if (runningCode === code) return { pid: existing, started: false };
    restartedBecause = 'its code changed since it started';
  }
  if (existing) await stopService(cfg, name);
  // Something this state dir did not start already answers on the port (a gateway run by hand, another
  // clone): starting ours would fail, and its readiness check would be fooled by the other one.
  if (name !== 'worker' && (await spec.ready(cfg, logFile))) {
    throw new Error(
      `ferry ${name}: another process already answers at ${name === 'gateway' ? cfg.gateway.url : cfg.api.url}; stop it or set ${name === 'gateway' ? 'FERRY_GATEWAY_PORT' : 'FERRY_API_PORT'}`,
    );
  }

  const fd = openSync(logFile, 'w');
  const child = spawn(process.execPath, spec.args, {
    cwd: cfg.repoRoot,
    env: ferryChildEnv(),
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  child.unref();
  writeFileSync(path.join(serviceDir(cfg), `${name}.pid`), String(child.pid));
  writeFileSync(codeFile, code);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(child.pid!)) break;
    if (await spec.ready(cfg, logFile)) return { pid: child.pid!, started: true, restartedBecause };
    await new Promise((r) => setTimeout(r, 250));
  }
  const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
  await stopService(cfg, name);
  throw new Error(`ferry ${name} did not become ready within ${timeoutMs / 1000}s; last lines of ${logFile}:\n${tail}`);
}

export async function stopService(cfg: FerryConfig, name: FerryService, graceMs = 10_000): Promise<boolean> {
  const pid = pidOf(cfg, name);
  rmSync(path.join(serviceDir(cfg), `${name}.pid`), { force: true });
  if (!pid) return false;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && isAlive(pid)) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  return true;
}

export async function serviceStatus(
  cfg: FerryConfig,
): Promise<Array<{ name: FerryService; pid?: number; healthy: boolean; log: string }>> {
  return Promise.all(
    FERRY_SERVICES.map(async (name) => {
      const log = path.join(serviceDir(cfg), `${name}.log`);
      const pid = pidOf(cfg, name);
      return { name, pid, healthy: pid !== undefined && (await specs[name](cfg).ready(cfg, log)), log };
    }),
  );
}
