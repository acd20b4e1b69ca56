/**
 * One gateway per state dir: two gateways adopting and supervising the same replicas would fight
 * over them. The lock is a pid file; a lock left by a crashed gateway (its process is gone) is taken over.
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { isSameProcessAlive, readProcStartTicks } from './replicaProcess';

interface LockContent {
  pid: number;
  procStartTicks: string | null;
}

export function acquireStateDirLock(stateDir: string): { release(): void } {
  const file = path.join(stateDir, 'gateway', 'gateway.lock');
  let holder: LockContent | undefined;
  try {
    holder = JSON.parse(readFileSync(file, 'utf8')) as LockContent;
  } catch {
    holder = undefined; // absent or unreadable: nobody holds it
  }
  if (holder && holder.pid !== process.pid && isSameProcessAlive(holder)) {
    throw new Error(
      `another Ferry gateway (pid ${holder.pid}) is using ${stateDir}; stop it first or use another state dir`,
    );
  }
  const mine: LockContent = { pid: process.pid, procStartTicks: readProcStartTicks(process.pid) };
  writeFileSync(file, JSON.stringify(mine));
  return {
    release() {
      try {
        const current = JSON.parse(readFileSync(file, 'utf8')) as LockContent;
        if (current.pid === process.pid) unlinkSync(file);
      } catch {
        /* already gone */
      }
    },
  };
}
