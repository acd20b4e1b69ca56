/**
 * One pre-started node process (lib/gateway/replicaLauncher.ts) kept ready to become a replica, so a
 * cold start does not pay for booting node (~50 ms here) nor, after the first time, for compiling
 * the server bundle (a V8 code cache). After it is used, the next one is started a little later, when
 * it no longer competes for the CPU with the replica that is starting.
 *
 * Once it has seen a plan whose program supports it (`standbyEntry`: the inference server), the next
 * standby also loads that program in advance — its imports, onnxruntime and OpenTelemetry, evaluated
 * while nobody waits — and serves the next cold start of any plan running the same script. A plan
 * running another script gets a process of its own, and the standby is replaced by one for it.
 *
 * It serves launch plans that run one plain .js file with this machine's node and no node flags
 * (image entrypoints, and model dirs through the bundled server); anything else starts as usual.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { LaunchPlan } from './launchPlan';
import type { LaunchCommand } from './replicaLauncher';

/** What spawnReplica needs to turn the standby into a replica. */
export interface TakenStandby {
  child: ChildProcess;
  procStartTicks: string | null;
  logFile: string;
  /** Sends the launch command; the process then runs the plan's script. */
  launch(command: Omit<LaunchCommand, 'cacheDir'>): void;
}

interface Prewarm {
  script: string;
  env: Record<string, string>;
  cwd: string;
}

const LOGS_KEPT = 20;
const TITLE_ROOM = 2048;
const REFILL_DELAY_MS = 1500;

export function standbyCanRun(plan: LaunchPlan): boolean {
  return (
    plan.command === process.execPath &&
    plan.args.length >= 1 &&
    plan.args[0].endsWith('.js') &&
    !plan.args[0].startsWith('-') &&
    plan.env.NODE_OPTIONS === undefined
  );
}

interface Waiting {
  child: ChildProcess;
  logFile: string;
  procStartTicks: string | null;
  /** The script it loaded in advance, if any. */
  prewarmed: string | undefined;
}

export class StandbyProcess {
  private current: Waiting | undefined;
  /** What the next standby loads in advance: the program of the last plan that supports it. */
  private prewarm: Prewarm | undefined;
  private launcher: Promise<string> | undefined;
  private refillTimer: NodeJS.Timeout | undefined;
  private filling: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly stateDir: string,
    private readonly env: () => Record<string, string>,
    private readonly readStartTicks: (pid: number) => string | null,
    private readonly log: (message: string) => void,
  ) {}

  private get codeCacheDir(): string {
    return path.join(this.stateDir, 'gateway', 'code-cache');
  }

  /** Starts the standby process in the background (errors are logged: starting replicas the usual way still works). */
  fill(): void {
    if (this.closed || this.current || this.filling) return;
    this.filling = this.spawnOne()
      .catch((err: Error) => this.log(`standby process not started: ${err.message}`))
      .finally(() => (this.filling = undefined));
  }

  private async spawnOne(): Promise<void> {
    this.launcher ??= bundleLauncher(this.stateDir);
    const script = await this.launcher.catch((err) => {
      this.launcher = undefined;
      throw err;
    });
    if (this.closed || this.current) return;
    const logDir = path.join(this.stateDir, 'gateway', 'logs', '_standby');
    await mkdir(logDir, { recursive: true });
    const files = (await readdir(logDir)).filter((f) => f.endsWith('.log')).sort();
    for (const f of files.slice(0, Math.max(0, files.length - LOGS_KEPT + 1)))
      await rm(path.join(logDir, f), { force: true });
    if (this.closed || this.current) return;
    const logFile = path.join(logDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}.log`);
    const prewarm = this.prewarm && existsSync(this.prewarm.script) ? this.prewarm : undefined;
    const env = prewarm
      ? {
          ...this.env(),
          ...prewarm.env,
          FERRY_STANDBY_PREWARM: prewarm.script,
          FERRY_STANDBY_CACHE_DIR: this.codeCacheDir,
        }
      : this.env();
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      // The blank argument reserves room in the process's argument area for the title the launcher
      // sets once it knows what it runs, so `ps` shows `node <script>` like any other replica.
      child = spawn(process.execPath, [script, ' '.repeat(TITLE_ROOM)], {
        env,
        ...(prewarm ? { cwd: prewarm.cwd } : {}),
        detached: true,
        stdio: ['pipe', fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    if (child.pid === undefined) {
      child.once('error', () => undefined);
      throw new Error(`cannot start ${process.execPath}`);
    }
    child.stdin!.on('error', () => undefined); // it may exit before we write
    child.unref();
    const entry: Waiting = {
      child,
      logFile,
      procStartTicks: this.readStartTicks(child.pid),
      prewarmed: prewarm?.script,
    };
    this.current = entry;
    child.once('exit', () => {
      if (this.current === entry) this.current = undefined;
    });
  }

  /** True while a standby process is up and waiting for a command. */
  get waiting(): boolean {
    return this.current !== undefined && this.current.child.exitCode === null && this.current.child.signalCode === null;
  }

  /** The waiting process, if there is one; the next is started after a pause. */
  take(plan: LaunchPlan): TakenStandby | undefined {
    const entry = this.current;
    if (
      !entry ||
      this.closed ||
      !standbyCanRun(plan) ||
      entry.child.exitCode !== null ||
      entry.child.signalCode !== null
    )
      return undefined;
    // The next standby is for the program started last: loaded in advance when it supports that.
    this.prewarm = plan.standbyEntry ? { script: plan.args[0], env: plan.env, cwd: plan.cwd } : undefined;
    this.current = undefined;
    clearTimeout(this.refillTimer);
    this.refillTimer = setTimeout(() => this.fill(), REFILL_DELAY_MS);
    this.refillTimer.unref();
    if (entry.prewarmed !== undefined && entry.prewarmed !== plan.args[0]) {
      // It loaded another program: no use to this plan. The next one loads this plan's program, if it can.
      stopWaiting(entry);
      return undefined;
    }
    const cacheDir = this.codeCacheDir;
    return {
      child: entry.child,
      procStartTicks: entry.procStartTicks,
      logFile: entry.logFile,
      launch(command) {
        const stdin = entry.child.stdin!;
        stdin.end(`${JSON.stringify({ ...command, cacheDir } satisfies LaunchCommand)}\n`);
      },
    };
  }

  /** Stops the waiting process (it is nobody's replica yet), after any start in progress. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.refillTimer);
    await this.filling;
    const entry = this.current;
    this.current = undefined;
    if (entry) stopWaiting(entry);
  }
}

/** Stops a standby process that is nobody's replica. */
function stopWaiting(entry: Waiting): void {
  entry.child.stdin?.destroy();
  try {
    entry.child.kill('SIGKILL');
  } catch {
    /* already gone */
  }
}

const launchers = new Map<string, Promise<string>>();

/** `<stateDir>/gateway/runtime/launcher-<hash>.js`: replicaLauncher.ts bundled into plain CommonJS. */
export function bundleLauncher(stateDir: string): Promise<string> {
  let p = launchers.get(stateDir);
  if (!p) {
    p = (async () => {
      const { build } = await import('esbuild');
      const result = await build({
        entryPoints: [path.join(__dirname, 'replicaLauncher.ts')],
        bundle: true,
        platform: 'node',
        target: 'node20',
        format: 'cjs',
        write: false,
        logLevel: 'silent',
      });
      const bytes = Buffer.from(result.outputFiles[0]!.contents);
      const dir = path.join(stateDir, 'gateway', 'runtime');
      await mkdir(dir, { recursive: true });
      const file = path.join(dir, `launcher-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.js`);
      if (!existsSync(file)) {
        const tmp = `${file}.${process.pid}.tmp`;
        await writeFile(tmp, bytes);
        await rename(tmp, file);
      }
      return file;
    })();
    p.catch(() => launchers.delete(stateDir));
    launchers.set(stateDir, p);
  }
  return p;
}
