/**
 * The trade-off table as text, for the CLI (`ferry optimize`, `ferry status`, `ferry deploy --review`)
 * and bench/: one row per candidate with ratios against the original measured in the same run.
 */
import type { OptimizationCandidate, OptimizationTable } from './types';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function formatMs(ms: number): string {
  if (ms < 1) return `${(ms * 1000).toFixed(0)}µs`;
  if (ms < 100) return `${ms.toFixed(2)}ms`;
  return `${ms.toFixed(0)}ms`;
}

function ratio(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '';
  return `${x >= 9.95 ? x.toFixed(0) : x.toFixed(2)}x`;
}

function throughput(perSec: number): string {
  if (perSec >= 1e6) return `${(perSec / 1e6).toFixed(1)}M/s`;
  if (perSec >= 1e3) return `${(perSec / 1e3).toFixed(1)}k/s`;
  return `${perSec.toFixed(0)}/s`;
}

export interface TableOptions {
  /** Mark this candidate as chosen (else the table's best is marked). */
  chosen?: string;
  /** Indent every line. */
  indent?: string;
}

/** Lines of the table: header, one line per measured candidate, then not-applicable / failed ones. */
export function formatTradeoffTable(table: OptimizationTable, opts: TableOptions = {}): string[] {
  const measured = table.candidates.filter((c) => c.state === 'measured' && c.row);
  const large = measured.find((c) => c.row!.largeBatch)?.row?.largeBatch?.batchSize;
  const header = [
    'candidate',
    'size',
    'gzip',
    'load',
    'p50 b1',
    'p95 b1',
    'speed',
    ...(large ? [`p50 b${large}`, `thrpt b${large}`] : []),
    'peak RSS',
    'cosine',
    'top-1',
    'max|err|',
    '$/1M',
    'verdict',
  ];
  const rows: string[][] = measured.map((c) => {
    const r = c.row!;
    const lb = r.largeBatch;
    return [
      c.id,
      `${formatBytes(r.sizeBytes)} ${ratio(r.vsOriginal.sizeRatio)}`,
      `${formatBytes(r.gzipBytes)} ${ratio(r.vsOriginal.gzipRatio)}`,
      formatMs(r.loadMs),
      formatMs(r.batch1.p50Ms),
      formatMs(r.batch1.p95Ms),
      ratio(r.vsOriginal.speedupP50),
      ...(large
        ? [
            lb ? `${formatMs(lb.p50Ms)} ${ratio(r.vsOriginal.speedupLargeBatch)}` : '-',
            lb ? throughput(lb.throughputPerSec) : '-',
          ]
        : []),
      formatBytes(r.peakRssBytes),
      r.agreement.cosine.toFixed(5),
      r.agreement.top1 === null ? '-' : r.agreement.top1.toFixed(3),
      r.agreement.maxAbsError === 0 ? '0' : r.agreement.maxAbsError.toExponential(1),
      r.costPerMillionUsd.toPrecision(3),
      verdict(c, table, opts.chosen),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    (opts.indent ?? '') +
    cells
      .map((cell, i) => (i === 0 || i === cells.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  for (const c of table.candidates.filter((x) => x.state !== 'measured')) {
    out.push(
      `${opts.indent ?? ''}${c.id.padEnd(widths[0]!)}  ${c.state === 'not-applicable' ? 'not applicable' : 'failed'}: ${c.reason ?? ''}`,
    );
  }
  return out;
}

function verdict(c: OptimizationCandidate, table: OptimizationTable, chosen?: string): string {
  const parts: string[] = [];
  if (c.id === (chosen ?? table.best)) parts.push(chosen ? '* chosen' : '* best');
  if (c.id === 'original') parts.push('baseline');
  if (!c.withinBudget) parts.push(`rejected: ${(c.rejection ?? '').replace(/^outside the accuracy budget: /, '')}`);
  return parts.join(', ');
}

/** Two lines that explain the table: budget and score. */
export function tableFootnotes(table: OptimizationTable, indent = ''): string[] {
  const b = table.budget;
  return [
    `${indent}budget: cosine ≥ ${b.minCosine}, top-1 ≥ ${b.minTop1}${b.maxAbsError !== undefined ? `, max |err| ≤ ${b.maxAbsError}` : ''}; target: ${table.target.kind}, ${table.target.threads} thread(s), ${table.target.sameMachine ? 'this machine' : 'portable image'}`,
    `${indent}${table.score}`,
    `${indent}measured: ${table.method}`,
  ];
}
