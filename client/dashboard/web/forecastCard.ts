/**
 * Predictive scaling (GET /api/deployments/:id/forecast), shown for a deployment made with `--predictive
 * on|forecast-only`: the forecast peak per minute at each collection against the requests per minute that
 * came, and the replica floor each decision called for.
 */
import { html } from 'htm/preact';
import type { ForecastRow } from '../../../lib/db/analyticsRepository';
import { TimeChart } from './charts';
import { time } from './format';

export interface ForecastView {
  decisions: ForecastRow[];
  actual: Array<{ t: number; requestsPerMinute: number }>;
}

/** Per minute of `actual`: the last decision made in that minute (null where none was). */
function perMinute(view: ForecastView, value: (d: ForecastRow) => number): Array<number | null> {
  const byMinute = new Map<number, number>();
  for (const d of view.decisions) byMinute.set(Math.floor(d.at / 60_000) * 60_000, value(d));
  return view.actual.map((a) => byMinute.get(a.t) ?? null);
}

export function ForecastCard({ f }: { f: ForecastView }) {
  if (f.decisions.length === 0) return null;
  const last = f.decisions[f.decisions.length - 1]!;
  const x = f.actual.map((a) => a.t / 1000);
  return html`<div class="card" id="predictive">
      <b>Predictive scaling (${last.mode})</b>
      <p>
        Floor <span id="predictive-floor">${last.floor}</span> replica(s)${last.applied ? ', set on the target' : ', not set'}:
        ${last.reason} (at ${time(new Date(last.at).toISOString())})
      </p>
    </div>
    <div class="charts">
      <${TimeChart} id="chart-forecast" title="Requests per minute: forecast peak ahead vs actual" x=${x}
        series=${[
          { label: 'actual', color: '#2a6fdb', values: f.actual.map((a) => a.requestsPerMinute) },
          { label: 'forecast peak', color: '#e67e22', values: perMinute(f, (d) => d.forecastPerMinute) },
        ]} />
      <${TimeChart} id="chart-floor" title="Replica floor (predictive)" x=${x}
        series=${[{ label: 'floor', color: '#8e44ad', values: perMinute(f, (d) => d.floor) }]} />
    </div>`;
}
