/**
 * The container monitor: conmon (Debian's package; the monitor Podman and CRI-O run youki and runc
 * under). It runs `<runtime> create`, stays the parent of the container's init process (a child
 * subreaper), writes its stdout/stderr to a log file and, when it exits, its exit status to a file —
 * then exits itself, leaving the stopped container (and so its cgroup, with the OOM-kill counter)
 * in place until Ferry deletes it.
 *
 * Why not the runtime's own foreground `run`: it deletes the container — and its cgroup — the moment
 * the process exits (youki 0.7 ignores `--keep`), so an OOM kill could no longer be told from any
 * other SIGKILL; and `run --detach` leaves no process that can learn the exit status at all.
 * conmon daemonizes, so a container outlives the Node process that started it.
 */
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hostSearchPath } from '../config';
import type { ContainerRuntime } from './containerRuntime';

/** The monitor's files, all in the container's bundle folder. */
export function monitorPaths(bundleDir: string, id: string) {
  return {
    containerPidFile: path.join(bundleDir, 'container.pid'),
    monitorPidFile: path.join(bundleDir, 'monitor.pid'),
    exitDir: path.join(bundleDir, 'exit'),
    /** conmon names the exit file after the container id. */
    exitFile: path.join(bundleDir, 'exit', id),
    persistDir: path.join(bundleDir, 'persist'),
    /** conmon links <this>/<id> to the bundle folder and puts its attach socket (unused here) there. */
    socketDir: path.join(bundleDir, 'sockets'),
  };
}

const CREATE_TIMEOUT_MS = 60_000;

/**
 * Runs `<runtime> create` for the bundle under a new conmon; resolves with the container init's pid
 * once the container exists (status "created"), or rejects with the runtime's error.
 */
export async function createUnderMonitor(opts: {
  conmon: string;
  runtime: ContainerRuntime;
  id: string;
  bundleDir: string;
  /** Container stdout/stderr, one line each: `<RFC 3339 time> <stdout|stderr> <F|P> <text>`. */
  logPath: string;
}): Promise<{ pid: number }> {
  const { id, runtime, bundleDir } = opts;
  const p = monitorPaths(bundleDir, id);
  await Promise.all([p.exitDir, p.persistDir, p.socketDir].map((d) => mkdir(d, { recursive: true })));
  const args = [
    ...['--api-version', '1', '-c', id, '-u', id, '-n', id],
    ...['-r', runtime.path, '--runtime-arg', '--root', '--runtime-arg', runtime.root],
    ...['-b', bundleDir, '-p', p.containerPidFile, '--conmon-pidfile', p.monitorPidFile],
    ...['--exit-dir', p.exitDir, '-0', p.persistDir, '--socket-dir-path', p.socketDir],
    ...['-l', `k8s-file:${opts.logPath}`],
  ];
  const child = spawn(opts.conmon, args, {
    // fd 3 is conmon's sync pipe: it writes {"data": <pid>} once the runtime's create succeeded, or
    // {"data": -1, "message": "<runtime's error>"} when it failed.
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    env: { PATH: hostSearchPath(), _OCI_SYNCPIPE: '3' },
    // conmon 2.1 also writes an `oom` file into its working directory when the OOM killer strikes.
    cwd: bundleDir,
    detached: true,
  });
  child.unref();
  const sync = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d;
  });
  // conmon reports why it gave up on stderr, which may arrive just after the sync pipe closes.
  const stderrDone = new Promise<void>((resolve) => {
    child.stderr?.once('close', resolve);
    setTimeout(resolve, 1000).unref();
  });
  try {
    const message = await new Promise<{ data: number; message?: string }>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(
        () => reject(new Error(`conmon: no answer from ${runtime.name} create`)),
        CREATE_TIMEOUT_MS,
      );
      const fail = (why: string) => {
        clearTimeout(timer);
        void stderrDone.then(() => reject(new Error(`conmon ${why}${stderr.trim() ? `: ${stderr.trim()}` : ''}`)));
      };
      sync.on('data', (d: Buffer) => {
        text += d;
        const nl = text.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        try {
          resolve(JSON.parse(text.slice(0, nl)));
        } catch {
          reject(new Error(`conmon wrote an unreadable sync message: ${text.slice(0, nl)}`));
        }
      });
      sync.on('end', () => fail('closed its sync pipe without a result'));
      sync.on('error', (err: Error) => fail(`sync pipe: ${err.message}`));
      child.on('error', (err) => fail(`could not be started: ${err.message}`));
    });
    if (!(message.data > 0)) {
      throw new Error(`${runtime.name} create failed: ${(message.message ?? 'no message').trim()}`);
    }
    return { pid: message.data };
  } finally {
    sync.destroy();
    child.stderr?.destroy();
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readNumber(file: string): Promise<number | undefined> {
  try {
    const text = (await readFile(file, 'utf8')).trim();
    return /^-?\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resolves with the container's exit status as conmon recorded it (the code, or 128 + the signal
 * number), or with `undefined` if conmon died without recording one.
 */
export async function waitForExitStatus(
  bundleDir: string,
  id: string,
  signal?: AbortSignal,
): Promise<number | undefined> {
  const p = monitorPaths(bundleDir, id);
  let wake: () => void = () => undefined;
  // inotify wakes us the moment the file appears; the poll is the safety net (and checks conmon is alive).
  const watcher = watch(p.exitDir, () => wake());
  try {
    for (;;) {
      signal?.throwIfAborted();
      const woken = new Promise<void>((r) => (wake = r));
      const status = await readNumber(p.exitFile);
      if (status !== undefined) return status;
      const monitorPid = await readNumber(p.monitorPidFile);
      if (monitorPid !== undefined && !pidAlive(monitorPid)) return readNumber(p.exitFile);
      await Promise.race([woken, sleep(500)]);
    }
  } finally {
    watcher.close();
  }
}
