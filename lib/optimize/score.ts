/**
 * The score one-click uses to pick a candidate: the estimated cost of serving one million batch-1
 * requests, in USD. A replica holds its cores and its memory for as long as a request runs, so
 *
 *   cost per request = p50 latency × (cores × price per core-second + peak RSS in GiB × price per GiB-second)
 *
 * Lower is better. Faster candidates win, and so do candidates that reach the same latency with fewer
 * threads or less memory; a second thread is worth it only if it nearly halves the latency. Prices are
 * a public on-demand catalogue's (AWS Fargate, Linux/x86, us-east-1: $0.04048 per vCPU-hour and
 * $0.004445 per GB-hour); only their ratio matters for the ranking. Candidates within 2% of each other
 * count as tied, and the tie goes to the lower p50 latency, then to the smaller compressed size.
 */
import type { TargetSpec } from '../targets/targetSpec';
import type { ServingSessionOptions } from './types';

export const PRICES = { usdPerCoreHour: 0.04048, usdPerGiBHour: 0.004445 };

export const SCORE_DEFINITION =
  'score = estimated USD per million batch-1 requests = p50 latency × (cores × $0.04048/core-hour + peak RSS GiB × $0.004445/GiB-hour); lowest wins, ties (within 2%) go to lower p50, then smaller gzip size';

export function coresUsed(options: ServingSessionOptions | undefined, target: TargetSpec): number {
  const intra =
    options?.intraOpNumThreads && options.intraOpNumThreads > 0 ? options.intraOpNumThreads : target.threads;
  const inter = options?.executionMode === 'parallel' ? Math.max(1, options.interOpNumThreads ?? 1) : 1;
  return Math.max(1, Math.min(target.threads, intra * inter));
}

export function costPerMillionUsd(p50Ms: number, cores: number, peakRssBytes: number): number {
  const perSecond = (cores * PRICES.usdPerCoreHour + (peakRssBytes / 2 ** 30) * PRICES.usdPerGiBHour) / 3600;
  return (p50Ms / 1000) * perSecond * 1e6;
}

export interface Scored {
  id: string;
  cost: number;
  p50Ms: number;
  gzipBytes: number;
}

/** The lowest cost; candidates within 2% of it are tied and ranked by p50, then by compressed size. */
export function pickBest<T extends Scored>(items: T[]): T | undefined {
  if (items.length === 0) return undefined;
  const min = Math.min(...items.map((i) => i.cost));
  const near = items.filter((i) => i.cost <= min * 1.02);
  near.sort((a, b) => a.p50Ms - b.p50Ms || a.gzipBytes - b.gzipBytes);
  return near[0];
}
