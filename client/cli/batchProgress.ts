/**
 * `ferry batch`'s progress: the batch runner's JSON lines (runtime/batch/main.ts) read from its output,
 * and the line drawn from them: files done of total, rate and ETA of this run, failures.
 */
import type { BatchProgress } from '../../runtime/batch/batchRunner';
import { bar } from './progress';

const LINE_PREFIX = '{"ferryBatch":';

export type BatchEvent = ({ ferryBatch: 'progress' } & BatchProgress) | ({ ferryBatch: 'summary' } & BatchProgress);

function parseEvent(text: string): BatchEvent | undefined {
  try {
    return JSON.parse(text) as BatchEvent;
  } catch {
    return undefined; // not one of the runner's lines after all
  }
}

/** Splits a stream of text into the runner's events; other lines go to `other` (its log). */
export class BatchEventReader {
  private pending = '';

  constructor(
    private readonly onEvent: (event: BatchEvent) => void,
    private readonly other: (line: string) => void = () => {},
  ) {}

  push(text: string): void {
    this.pending += text;
    let nl = this.pending.indexOf('\n');
    while (nl >= 0) {
      this.line(this.pending.slice(0, nl));
      this.pending = this.pending.slice(nl + 1);
      nl = this.pending.indexOf('\n');
    }
  }

  /** A line the runner wrote (without its newline). */
  line(text: string): void {
    const event = text.startsWith(LINE_PREFIX) ? parseEvent(text) : undefined;
    if (event) this.onEvent(event);
    else if (text.trim()) this.other(text);
  }
}

/**
 * One line of conmon's k8s-file log, `<time> stdout|stderr F|P <text>`: the text, and whether the line
 * is whole (F) or a part continued by the next record (P).
 */
export function parseContainerLogRecord(
  record: string,
): { stream: string; text: string; partial: boolean } | undefined {
  const m = /^\S+ (stdout|stderr) ([FP]) ?(.*)$/.exec(record);
  return m ? { stream: m[1]!, partial: m[2] === 'P', text: m[3]! } : undefined;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** `[####....]  42% 126/300 files, 31.5 files/s, ETA 6s, 2 failed (120 done before)`. */
export function formatBatchProgress(p: BatchProgress, elapsedSeconds: number): string {
  const finished = p.alreadyDone + p.succeeded + p.failed;
  const percent = p.total === 0 ? 100 : (100 * finished) / p.total;
  const ranNow = p.succeeded + p.failed;
  const rate = elapsedSeconds > 0 ? ranNow / elapsedSeconds : 0;
  const left = p.total - finished;
  const eta = left === 0 ? 0 : rate > 0 ? left / rate : Number.POSITIVE_INFINITY;
  const parts = [
    `${bar(percent)} ${finished}/${p.total} files`,
    `${rate.toFixed(rate >= 10 ? 0 : 1)} files/s`,
    `ETA ${duration(eta)}`,
  ];
  if (p.failed) parts.push(`${p.failed} failed`);
  let line = parts.join(', ');
  if (p.alreadyDone) line += ` (${p.alreadyDone} done before)`;
  return line;
}
