/**
 * One replica: an inference server process on a free 127.0.0.1 port, started detached (its own
 * process group, so it outlives a gateway restart and is adopted by the next gateway), with its
 * stdout/stderr appended to a log file under the state dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReplicaRecord } from './deploymentStore';
import type { LaunchPlan } from './launchPlan';

const HOST = '127.0.0.1';
/** Log files kept per deployment; older ones are pruned when a replica starts. */
const LOGS_KEPT = 20;
/** Host variables a replica may need; everything else comes from the launch plan. */
const INHERITED_ENV = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'NODE_OPTIONS', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_TRACES_EXPORTER', 'OTEL_METRICS_EXPORTER', 'OTEL_LOGS_EXPORTER'];

export class Replica {
  exited = false;
  /** Set when the gateway itself stops it, so the exit is not treated as a crash. */
  stopping = false;
  ready = false;
  exitReason: string | undefined;
  /** Called once when the process is seen to exit (child 'exit' event or a failed liveness check). */
  onExit: ((replica: Replica) => void) | undefined;
  private exitWaiters: Array<() => void> = [];

  constructor(
    readonly record: ReplicaRecord,
    private readonly child?: ChildProcess,
  ) {
    child?.once('exit', (code, signal) => this.markExited(signal ? `killed by ${signal}` : `exited with code ${code}`));
  }

  get pid(): number {
    return this.record.pid;
  }
  get port(): number {
    return this.record.port;
  }

  markExited(reason: string): void {
    if (this.exited) return;
    this.exited = true; // `ready` keeps its value: it tells a crash of a serving replica from a failed start
    this.exitReason = reason;
    for (const wake of this.exitWaiters.splice(0)) wake();
    this.onExit?.(this);
  }

  /** Liveness by pid (for adopted replicas, which are not our children and send no 'exit' event). */
  checkAlive(): boolean {
    if (this.exited) return false;
    if (!isSameProcessAlive(this.record)) this.markExited('is gone');
    return !this.exited;
  }

  private waitForExit(timeoutMs: number): Promise<boolean> {
    if (this.exited) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        clearInterval(poll);
        resolve(this.exited);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        clearInterval(poll);
        resolve(true);
      };
      this.exitWaiters.push(done);
      // Adopted replicas are not our children: poll their pid.
      const poll = setInterval(() => this.child === undefined && this.checkAlive(), 50);
    });
  }

  /** SIGTERM (the server drains in-flight requests), then SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.ready = false;
    if (this.exited || !this.checkAlive()) return;
    signalGroup(this.pid, 'SIGTERM');
    if (await this.waitForExit(graceMs)) return;
    signalGroup(this.pid, 'SIGKILL');
    await this.waitForExit(5000);
  }

  logTail(lines = 20): string {
    return readLogTail(this.record.logFile, lines);
  }
}

/** The replica was started detached, so it leads its own process group: signal the whole group. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks); null where /proc is unavailable. */
export function readProcStartTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** True if `pid` runs and is the same process we recorded (not a later process that reused the pid). */
export function isSameProcessAlive(record: Pick<ReplicaRecord, 'pid' | 'procStartTicks'>): boolean {
  try {
    process.kill(record.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const ticks = readProcStartTicks(record.pid);
  // A zombie still has a /proc entry: state field 3 is 'Z'.
  if (ticks !== null && isZombie(record.pid)) return false;
  return record.procStartTicks === null || ticks === null || ticks === record.procStartTicks;
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function spawnReplica(plan: LaunchPlan, logDir: string): Promise<Replica> {
  await mkdir(logDir, { recursive: true });
  await pruneLogs(logDir);
  const port = await freePort();
  const startedAt = new Date();
  const logFile = path.join(logDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}-${port}.log`);
  const fd = openSync(logFile, 'a');
  const env: Record<string, string> = {};
  for (const name of INHERITED_ENV) if (process.env[name] !== undefined) env[name] = process.env[name]!;
  Object.assign(env, plan.env, { PORT: String(port), HOST });
  let child: ChildProcess;
  try {
    child = spawn(plan.command, plan.args, { cwd: plan.cwd, env, detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) {
    const error = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw new Error(`cannot start ${plan.command}: ${error.message}`);
  }
  child.unref(); // the gateway may exit (and be restarted) while replicas keep serving
  const record: ReplicaRecord = {
    pid: child.pid,
    port,
    startedAt: startedAt.toISOString(),
    procStartTicks: readProcStartTicks(child.pid),
    logFile,
    planKey: plan.key,
  };
  return new Replica(record, child);
}

/** An already-running replica from a previous gateway, if it is still that process. */
export function adoptReplica(record: ReplicaRecord): Replica | undefined {
  return isSameProcessAlive(record) ? new Replica(record) : undefined;
}

export async function probeReady(port: number, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await fetch(`http://${HOST}:${port}/v2/health/ready`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Resolves once the replica answers /v2/health/ready; rejects with its log tail if it dies or times out. */
export async function waitUntilReady(replica: Replica, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 20;
  while (Date.now() < deadline) {
    if (replica.exited || (!replica.checkAlive())) {
      throw new Error(`replica pid ${replica.pid} ${replica.exitReason} before it was ready; its log ends with:\n${replica.logTail()}`);
    }
    if (await probeReady(replica.port, Math.max(50, Math.min(1000, deadline - Date.now())))) {
      replica.ready = true;
      return;
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 200);
  }
  throw new Error(`replica pid ${replica.pid} on port ${replica.port} was not ready after ${timeoutMs} ms; its log ends with:\n${replica.logTail()}`);
}

/** The last lines of a log file (reads at most its last 16 KiB). */
export function readLogTail(file: string, lines = 20): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const length = Math.min(size, 16 * 1024);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    const text = buf.toString('utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n') || '(empty log)';
  } catch (err) {
    return `(cannot read ${file}: ${(err as Error).message})`;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

async function pruneLogs(logDir: string): Promise<void> {
  const files = (await readdir(logDir)).filter((f) => f.endsWith('.log')).sort();
  for (const f of files.slice(0, Math.max(0, files.length - LOGS_KEPT + 1))) await rm(path.join(logDir, f), { force: true });
}
