/** Terminal rendering of a deployment's progress: one line per finished stage, a live bar while working. */
import { formatBytes } from '../../lib/optimize/table';
import type { DeploymentStatus, StageRecord } from '../../workflows/types';

export { formatBytes };

const isTty = Boolean(process.stdout.isTTY);

export function bar(percent: number, width = 24): string {
  const filled = Math.round((Math.max(0, Math.min(100, percent)) / 100) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(percent)).padStart(3)}%`;
}

function stageDuration(s: StageRecord): string {
  if (!s.startedAt || !s.finishedAt) return '';
  return `${((Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000).toFixed(1)}s`;
}

/** Prints what changed since the last status; keeps a single live line on a terminal. */
export class StageProgressPrinter {
  private printed = new Set<string>();
  private liveLine = false;

  update(status: DeploymentStatus, activityDetail?: string): void {
    this.clearLive();
    for (const s of status.stages) {
      const key = `${s.stage}:${s.state}`;
      if ((s.state === 'done' || s.state === 'failed') && !this.printed.has(key)) {
        this.printed.add(key);
        const mark = s.state === 'done' ? 'ok  ' : 'FAIL';
        console.log(`  ${mark} ${s.stage.padEnd(9)} ${stageDuration(s).padStart(6)}  ${s.detail ?? ''}`);
      } else if (s.state === 'running' && !this.printed.has(key) && !isTty) {
        this.printed.add(key);
        console.log(`  ...  ${s.stage}`);
      }
    }
    if (status.phase === 'live' || status.phase === 'failed') return;
    const running = status.stages.find((s) => s.state === 'running');
    const label = status.phase === 'awaiting-approval' ? 'waiting for approval' : (running?.stage ?? status.phase);
    if (isTty) {
      process.stdout.write(`  ${bar(status.percent)} ${label}${activityDetail ? `: ${activityDetail}` : ''}`);
      this.liveLine = true;
    }
  }

  clearLive(): void {
    if (this.liveLine) {
      process.stdout.write('\r\x1b[2K');
      this.liveLine = false;
    }
  }
}

export function describeHeartbeat(details: unknown): string | undefined {
  if (!details || typeof details !== 'object') return undefined;
  const d = details as { step?: string; percent?: number };
  return d.step ? `${d.step}${d.percent !== undefined ? ` ${d.percent}%` : ''}` : undefined;
}
