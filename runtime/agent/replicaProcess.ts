/**
 * The replica the agent looks after, as a process: by pid when it is given, else found in /proc by its
 * command line (on an instance, the agent runs in the host's pid namespace beside the replica's container).
 */
import { readdir, readFile } from 'node:fs/promises';

export async function findReplicaPid(cmdline: string, procDir = '/proc'): Promise<number | undefined> {
  const wanted = cmdline.trim().split(/\s+/).join('\u0000');
  for (const entry of await readdir(procDir)) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      // Arguments are NUL-separated, with a NUL after the last.
      const args = (await readFile(`${procDir}/${entry}/cmdline`, 'utf8')).split('\u0000').filter(Boolean);
      if (args.join('\u0000') === wanted) return Number(entry);
    } catch {
      /* gone meanwhile, or not ours to read */
    }
  }
  return undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGTERM: the inference server stops accepting, finishes its in-flight requests and exits. */
export function askToDrain(pid: number): boolean {
  try {
    process.kill(pid, 'SIGTERM');
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}
