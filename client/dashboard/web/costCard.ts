/**
 * A deployment's live cost and anomalies (GET /api/deployments/:id/cost): the 24-hour figures `ferry
 * cost` prints, a chart of the cost per 1k and the cost rate over time, and the anomalies, open ones
 * first, with when they cleared.
 */
import { html } from 'htm/preact';
import type { CostReport } from '../../../lib/analytics/costReport';
import type { AnomalyRow } from '../../../lib/db/analyticsRepository';
import { TimeChart } from './charts';
import { time } from './format';

export type CostView = Omit<CostReport, 'points'> & { points: CostReport['points']; anomalies: AnomalyRow[] };

const usd = (v: number | null) => (v === null ? '-' : v >= 1 ? `$${v.toFixed(2)}` : `$${v.toPrecision(3)}`);

const SIGNAL_LABEL: Record<string, string> = {
  latencyP95Ms: 'latency p95',
  errorRate: 'error rate',
  coldStartRate: 'cold-start rate',
  coldStartMs: 'cold-start duration',
  per1kUsd: 'cost per 1k',
  requestRate: 'request rate',
};

export function CostCard({ c }: { c: CostView }) {
  const x = c.points.map((p) => p.t / 1000);
  const open = c.anomalies.filter((a) => !a.clearedAt);
  return html`<div class="card" id="cost">
      <b>Cost (last 24 h)</b>
      ${
        c.intervals === 0
          ? html`<p class="na">Not measured yet.</p>`
          : html`<table>
            <tr><td>per 1,000 inferences</td><td id="cost-per1k">${usd(c.per1kUsd)}</td></tr>
            <tr><td>per day</td><td id="cost-per-day">${usd(c.perDayUsd)}</td></tr>
            <tr><td>projected per month</td><td>${usd(c.projectedMonthUsd)}</td></tr>
            <tr><td>idle (held, not serving)</td><td>${usd(c.idleUsd)} of ${usd(c.allocatedUsd)}</td></tr>
            <tr><td>replica-seconds</td><td>${c.replicaSeconds.toFixed(0)}</td></tr>
            <tr><td>requests</td><td>${c.requests}</td></tr>
            <tr><td>cold starts</td><td>${c.coldStarts}${c.coldStartMeanMs !== null ? ` (mean ${c.coldStartMeanMs.toFixed(0)} ms)` : ''}</td></tr>
            <tr><td>priced at</td><td>${c.priceSource ?? '-'} ${c.usdPerHour !== null ? `(${usd(c.usdPerHour)}/h)` : ''}</td></tr>
          </table>`
      }
    </div>
    <div class="charts">
      <${TimeChart} id="chart-cost-per1k" title="Cost per 1,000 inferences (USD)" x=${x}
        series=${[{ label: 'per 1k', color: '#b8860b', values: c.points.map((p) => p.per1kUsd) }]} />
      <${TimeChart} id="chart-cost-rate" title="Cost rate (USD per hour)" x=${x}
        series=${[{ label: '$/h', color: '#7f8c8d', values: c.points.map((p) => p.usdPerHour) }]} />
    </div>
    <div class="card" id="anomalies">
      <b>Anomalies</b> ${open.length > 0 && html`<span class="err">${open.length} open</span>`}
      ${
        c.anomalies.length === 0
          ? html`<p class="na">None detected.</p>`
          : html`<table>
            <thead><tr><th>signal</th><th>since</th><th>cleared</th><th>peak score</th></tr></thead>
            <tbody>${[...open, ...c.anomalies.filter((a) => a.clearedAt)].map(
              (a) => html`<tr class=${a.clearedAt ? '' : 'err'}>
                <td>${SIGNAL_LABEL[a.signal] ?? a.signal}</td><td>${time(a.since)}</td>
                <td>${a.clearedAt ? time(a.clearedAt) : 'open'}</td><td>${a.peakScore.toFixed(1)}</td></tr>`,
            )}</tbody>
          </table>`
      }
    </div>`;
}
