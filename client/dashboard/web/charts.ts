/**
 * Time-series charts with uPlot, from the samples the monitor records (GET /api/deployments/:id gives
 * the newest 240): request rate, latency percentiles and replicas. One uPlot per chart, made once and
 * given new data on every refresh, resized with its card.
 */
import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { MetricsSample } from '../../../lib/db/repository';

export interface ChartSeries {
  label: string;
  color: string;
  values: Array<number | null>;
}

const HEIGHT = 180;

export function TimeChart({ id, title, x, series }: { id: string; title: string; x: number[]; series: ChartSeries[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const data = [x, ...series.map((s) => s.values)] as uPlot.AlignedData;
  const labels = series.map((s) => s.label).join('|');
  const samples = series.reduce((n, s) => n + s.values.filter((v) => v !== null).length, 0);

  useEffect(() => {
    const el = box.current!;
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 200),
      height: HEIGHT,
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: true }))],
      axes: [{}, { size: 50 }],
      scales: { y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      legend: { live: false },
    };
    plot.current = new uPlot(opts, data, el);
    const resize = new ResizeObserver(() =>
      plot.current?.setSize({ width: Math.max(el.clientWidth, 200), height: HEIGHT }),
    );
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = undefined;
    };
  }, [labels]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return html`<div class="card chart" id=${id} data-samples=${samples}>
    <b>${title}</b>
    ${samples === 0 && html`<p class="na">No samples yet.</p>`}
    <div ref=${box}></div>
  </div>`;
}

/** Requests per second between consecutive samples (the monitor records the count since the last one). */
export function requestRate(points: MetricsSample[]): Array<number | null> {
  return points.map((p, i) => {
    if (i === 0) return null;
    const seconds = (Date.parse(p.collectedAt) - Date.parse(points[i - 1]!.collectedAt)) / 1000;
    return seconds > 0 ? p.requestsDelta / seconds : null;
  });
}

export function MetricsCharts({ points }: { points: MetricsSample[] }) {
  const x = points.map((p) => Date.parse(p.collectedAt) / 1000);
  return html`<div class="charts">
    <${TimeChart} id="chart-rate" title="Request rate (per second)" x=${x}
      series=${[{ label: 'requests/s', color: '#2a6fdb', values: requestRate(points) }]} />
    <${TimeChart} id="chart-latency" title="Latency (ms)" x=${x}
      series=${[
        { label: 'p50', color: '#1a9850', values: points.map((p) => p.latencyP50Ms) },
        { label: 'p95', color: '#d73027', values: points.map((p) => p.latencyP95Ms) },
      ]} />
    <${TimeChart} id="chart-replicas" title="Replicas (autoscaler and hibernation)" x=${x}
      series=${[{ label: 'replicas', color: '#8e44ad', values: points.map((p) => p.replicas) }]} />
  </div>`;
}
