/**
 * One replica: an inference server process listening on a Unix domain socket under the state dir
 * (`<stateDir>/gateway/sockets/`, when its launch plan says the program supports FERRY_SOCKET) or else
 * on a free 127.0.0.1 port, started detached (its own process group, so it outlives a gateway restart
 * and is adopted by the next gateway: the socket path is in its record), with its stdout/stderr
 * appended to a log file under the state dir. A replica that runs as a container (containerReplica.ts)
 * is the same object around a lib/container Container: stopped, watched and removed through it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { replicaHostEnv } from '../config';
import type { Container, ContainerExit } from '../container/container';
import type { ReplicaRuntimeName } from '../targets/deploymentTarget';
import type { ReplicaRecord } from './deploymentStore';
import { type LaunchPlan, replicaPlanKey } from './launchPlan';
import type { ReplicaAddress } from './proxy';
import type { StandbyProcess } from './standbyProcess';

/**
 * A replica's record as stored in the state file: `socketPath` when it listens on a Unix domain socket
 * (its `port` is then 0). Records without it (TCP replicas, older gateways) are adopted as before.
 */
export type StoredReplicaRecord = ReplicaRecord & {
  socketPath?: string;
  /** A replica on another host (a pod): its address, and its name for `x-ferry-replica`. */
  host?: string;
  name?: string;
};

const HOST = '127.0.0.1';
/** Log files kept per deployment; older ones are pruned when a replica starts. */
const LOGS_KEPT = 20;
export class Replica {
  exited = false;
  /** Set when the gateway itself stops it, so the exit is not treated as a crash. */
  stopping = false;
  ready = false;
  /** True when the gateway's standby process became this replica (node was already booted). */
  prestarted = false;
  /** Requests the gateway is forwarding to this replica now. */
  inFlight = 0;
  exitReason: string | undefined;
  /** A container's exit as its monitor recorded it (with the OOM verdict); undefined for a process. */
  containerExit: ContainerExit | undefined;
  /** Called once when the process is seen to exit (child 'exit' event or a failed liveness check). */
  onExit: ((replica: Replica) => void) | undefined;
  /** Where the gateway sends its requests. */
  readonly address: ReplicaAddress;
  /** Headers the gateway adds to every response from this replica ([name, value, ...]). */
  readonly responseHeaders: readonly string[];
  private exitWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];
  private removal: Promise<void> | undefined;

  constructor(
    readonly record: StoredReplicaRecord,
    private readonly child?: ChildProcess,
    private readonly container?: Container,
  ) {
    this.address = record.socketPath
      ? { socketPath: record.socketPath, port: 0 }
      : { port: record.port, ...(record.host ? { host: record.host } : {}) };
    this.responseHeaders = ['x-ferry-replica', record.name ?? String(record.pid), 'x-ferry-revision', record.revision];
    child?.once('exit', (code, signal) => this.markExited(signal ? `killed by ${signal}` : `exited with code ${code}`));
    void container?.exited.then((exit) => {
      this.containerExit = exit;
      this.markExited(exit.reason);
    });
  }

  /** What runs it. */
  get runtime(): ReplicaRuntimeName {
    return this.record.runtime ?? 'process';
  }

  get pid(): number {
    return this.record.pid;
  }
  get port(): number {
    return this.record.port;
  }
  get revision(): string {
    return this.record.revision;
  }

  /** True if the gateway may send it a request. */
  get routable(): boolean {
    return this.ready && !this.stopping && !this.exited;
  }

  /** A request that was routed here is over. */
  release(): void {
    if (--this.inFlight === 0 && this.idleWaiters.length) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Resolves true once no request is in flight here (or it exited), false after `timeoutMs`. */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.inFlight <= 0 || this.exited) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (idle: boolean) => {
        clearTimeout(timer);
        resolve(idle);
      };
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== onIdle);
        done(false);
      }, timeoutMs);
      const onIdle = () => done(true);
      this.idleWaiters.push(onIdle);
      this.exitWaiters.push(onIdle);
    });
  }

  markExited(reason: string): void {
    if (this.exited) return;
    this.exited = true; // `ready` keeps its value: it tells a crash of a serving replica from a failed start
    this.exitReason = reason;
    removeSocketFile(this.record.socketPath);
    if (this.container) void this.removeContainer();
    for (const wake of this.exitWaiters.splice(0)) wake();
    this.onExit?.(this);
  }

  /** A stopped container's runtime state, cgroup, bundle and socket folder go (once, whoever asks first). */
  private removeContainer(): Promise<void> {
    this.removal ??= (async () => {
      await this.container!.remove().catch(() => undefined); // a leftover is tidied by the next start's sweep
      if (this.record.socketPath) await rm(path.dirname(this.record.socketPath), { recursive: true, force: true });
    })();
    return this.removal;
  }

  /** Liveness by pid (for adopted replicas, which are not our children and send no 'exit' event). */
  checkAlive(): boolean {
    if (this.exited) return false;
    // Our own children report their exit (with its code) through the 'exit' event, containers through
    // their monitor's exit file.
    if (this.child || this.container) return true;
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
      // Adopted processes are not our children: poll their pid.
      const poll = setInterval(() => this.child === undefined && this.checkAlive(), 50);
    });
  }

  /** SIGTERM (the server drains in-flight requests), then SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.ready = false;
    if (this.container) {
      const c = this.container;
      if (!this.exited) await c.stop(graceMs).catch(() => c.kill('SIGKILL').catch(() => undefined));
      await this.container.exited;
      await this.removeContainer();
      return;
    }
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

/** Where a new replica listens: a socket path, or a TCP port. */
export type Listen = { socketPath: string } | { port: number };

/** The environment of a replica: a few host variables, the launch plan's, and where to listen. */
export function replicaEnv(plan: LaunchPlan, listen: Listen | number): Record<string, string> {
  if (typeof listen === 'number') listen = { port: listen };
  return Object.assign(
    replicaHostEnv(),
    plan.env,
    'socketPath' in listen ? { FERRY_SOCKET: listen.socketPath } : { PORT: String(listen.port), HOST },
  );
}

/** Longest socket path used (sun_path holds 108 bytes on Linux, 104 elsewhere). */
export const MAX_SOCKET_PATH = 100;

/**
 * A new socket path under `socketDir` for a replica of `plan`, or undefined when the plan's program
 * does not listen on FERRY_SOCKET or the path would be too long (the replica then gets a TCP port).
 */
export function newSocketPath(plan: LaunchPlan, socketDir: string | undefined): string | undefined {
  if (!plan.socket || !socketDir || process.platform === 'win32') return undefined;
  const file = path.join(path.resolve(socketDir), `r-${randomBytes(6).toString('hex')}.sock`);
  if (Buffer.byteLength(file) > MAX_SOCKET_PATH) return undefined;
  // Replicas are reachable only through the gateway: no other user may even reach their sockets. (mkdir's
  // mode applies to a directory it creates, not to one that is there already.)
  mkdirSync(path.dirname(file), { recursive: true, mode: SOCKET_DIR_MODE });
  chmodSync(path.dirname(file), SOCKET_DIR_MODE);
  return file;
}

export const SOCKET_DIR_MODE = 0o700;
export const SOCKET_MODE = 0o600;

/**
 * The replica made its socket with its own umask: narrow it to the gateway's user. (The 0700 directory
 * already keeps others out; a socket file this user does not own, e.g. one made in a container with
 * another uid, keeps its mode.)
 */
function restrictSocket(socketPath: string | undefined): void {
  if (!socketPath) return;
  try {
    chmodSync(socketPath, SOCKET_MODE);
  } catch {
    /* not ours to change: see above */
  }
}

function removeSocketFile(socketPath: string | undefined): void {
  if (!socketPath) return;
  try {
    rmSync(socketPath, { force: true });
  } catch {
    /* not ours to worry about */
  }
}

/** The host environment a standby process boots with (before it takes a replica's). */
export function standbyBootEnv(): Record<string, string> {
  return replicaHostEnv();
}

/**
 * Starts a replica of `plan` on a socket under `socketDir` (see newSocketPath) or else a free port: the
 * standby process becomes it when there is one and it can run the plan, otherwise a new detached process.
 */
export async function spawnReplica(
  plan: LaunchPlan,
  logDir: string,
  revision: string,
  standby?: StandbyProcess,
  socketDir?: string,
): Promise<Replica> {
  const socketPath = newSocketPath(plan, socketDir);
  const port = socketPath ? 0 : await freePort();
  const startedAt = new Date();
  const env = replicaEnv(plan, socketPath ? { socketPath } : { port });
  const taken = standby?.take(plan);
  if (taken) {
    taken.launch({ script: plan.args[0], args: plan.args.slice(1), env, cwd: plan.cwd });
    const record: StoredReplicaRecord = {
      pid: taken.child.pid!,
      port,
      ...(socketPath ? { socketPath } : {}),
      startedAt: startedAt.toISOString(),
      procStartTicks: taken.procStartTicks,
      logFile: taken.logFile,
      planKey: replicaPlanKey(plan),
      ...(plan.container ? { rootfs: plan.container.rootfs } : {}),
      revision,
    };
    const replica = new Replica(record, taken.child);
    replica.prestarted = true;
    return replica;
  }
  await mkdir(logDir, { recursive: true });
  await pruneLogs(logDir);
  const logFile = path.join(
    logDir,
    `${startedAt.toISOString().replace(/[:.]/g, '-')}-${socketPath ? path.basename(socketPath, '.sock') : port}.log`,
  );
  const fd = openSync(logFile, 'a');
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
  const record: StoredReplicaRecord = {
    pid: child.pid,
    port,
    ...(socketPath ? { socketPath } : {}),
    startedAt: startedAt.toISOString(),
    procStartTicks: readProcStartTicks(child.pid),
    logFile,
    planKey: replicaPlanKey(plan),
    ...(plan.container ? { rootfs: plan.container.rootfs } : {}),
    revision,
  };
  return new Replica(record, child);
}

/** An already-running replica from a previous gateway, if it is still that process. */
export function adoptReplica(record: StoredReplicaRecord): Replica | undefined {
  if (isSameProcessAlive(record)) return new Replica(record);
  removeSocketFile(record.socketPath);
  return undefined;
}

/**
 * One GET /v2/health/ready: true on 200. Plain node:http without pooling: a refused connection (not
 * listening yet) fails in well under a millisecond, which makes short polling intervals cheap.
 * `target`: a replica (its socket or port), an address, or a TCP port.
 */
export function probeReady(
  target: number | ReplicaAddress | { address: ReplicaAddress },
  timeoutMs = 1000,
): Promise<boolean> {
  const address = typeof target === 'number' ? { port: target } : 'address' in target ? target.address : target;
  const where = address.socketPath ? { socketPath: address.socketPath } : { host: HOST, port: address.port };
  return new Promise((resolve) => {
    const req = http.get({ ...where, path: '/v2/health/ready', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}

/** Readiness polling: every 5 ms for the first 2 s (cold starts take a few hundred ms), then backing off to 100 ms. */
function pollDelay(elapsedMs: number): number {
  return elapsedMs < 2000 ? 5 : elapsedMs < 10_000 ? 25 : 100;
}

/** Resolves once the replica answers /v2/health/ready; rejects with its log tail if it dies or times out. */
export async function waitUntilReady(replica: Replica, timeoutMs: number): Promise<void> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  while (Date.now() < deadline) {
    if (replica.exited || !replica.checkAlive()) {
      throw new Error(
        `replica pid ${replica.pid} ${replica.exitReason} before it was ready; its log ends with:\n${replica.logTail()}`,
      );
    }
    if (replica.stopping) throw new Error(`replica pid ${replica.pid} was stopped before it was ready`);
    if (await probeReady(replica.address, Math.max(50, Math.min(1000, deadline - Date.now())))) {
      if (replica.exited || replica.stopping) continue;
      restrictSocket(replica.record.socketPath);
      replica.ready = true;
      return;
    }
    await sleep(pollDelay(Date.now() - started));
  }
  throw new Error(
    `replica pid ${replica.pid} ${replica.record.socketPath ? `on ${replica.record.socketPath}` : `on port ${replica.port}`} was not ready after ${timeoutMs} ms; its log ends with:\n${replica.logTail()}`,
  );
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

export async function pruneLogs(logDir: string): Promise<void> {
  const files = (await readdir(logDir)).filter((f) => f.endsWith('.log')).sort();
  for (const f of files.slice(0, Math.max(0, files.length - LOGS_KEPT + 1)))
    await rm(path.join(logDir, f), { force: true });
}
