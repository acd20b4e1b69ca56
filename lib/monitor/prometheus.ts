/**
 * Reads the Prometheus text exposition the inference servers publish, and estimates latency
 * quantiles from histogram buckets the way Prometheus' histogram_quantile does.
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parsePrometheusText(text: string): PromSample[] {
  const samples: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[3]) {
      for (const lm of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    }
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    samples.push({ name: m[1], labels, value });
  }
  return samples;
}

export function sumOf(samples: PromSample[], name: string): number {
  return samples.filter((s) => s.name === name).reduce((acc, s) => acc + s.value, 0);
}

/** Cumulative bucket counts merged across series (replicas, models) by their `le` bound. */
export function mergedBuckets(samples: PromSample[], histogram: string): Array<{ le: number; count: number }> {
  const byLe = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${histogram}_bucket`) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return [...byLe.entries()].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/** Linear interpolation inside the bucket that holds quantile q; null when there are no observations. */
export function histogramQuantile(q: number, buckets: Array<{ le: number; count: number }>): number | null {
  if (buckets.length === 0) return null;
  const total = buckets[buckets.length - 1].count;
  if (!(total > 0)) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe; // above the last finite bound: report that bound
      const inBucket = b.count - prevCount;
      return inBucket > 0 ? prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket : b.le;
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/**
 * Observations between two cumulative snapshots. Replicas restart (hibernation, crashes) and their
 * counters restart at zero: when any bucket went down, the current snapshot is all that is known.
 */
export function intervalBuckets(
  current: Array<{ le: number; count: number }>,
  previous: Array<{ le: number; count: number }>,
): Array<{ le: number; count: number }> {
  // The previous snapshot went through a JSON payload, where the +Inf bound became null.
  const before = new Map(previous.map((b) => [b.le ?? Infinity, b.count]));
  const reset = current.some((b) => b.count < (before.get(b.le) ?? 0));
  return reset ? current : current.map((b) => ({ le: b.le, count: b.count - (before.get(b.le) ?? 0) }));
}
