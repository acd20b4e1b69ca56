/**
 * One deployment: pipeline stages and progress, the plans (with Approve while the run waits), the
 * deployment options the deploy stage considered (the one taken marked), the benchmark, where it serves,
 * the gateway's revisions and traffic, charts of its metrics, its live cost and anomalies, its predictive
 * scaling (when on), recommendations with an Apply button, and its audit entries. The id comes from the
 * URL and is shown as text, whatever it holds.
 */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { MetricsSample } from '../../../lib/db/repository';
import type { DeploymentStatus as GatewayStatus } from '../../../lib/targets/deploymentTarget';
import type { DeploymentStatus, MonitorStatus } from '../../../workflows/types';
import type { ActivityProgress } from '../../sdk/types';
import { apiJson, deploymentPath, storedKey } from './api';
import { type AuditRow, AuditTable } from './auditPage';
import { MetricsCharts } from './charts';
import { CostCard, type CostView } from './costCard';
import { DeploymentOptionsCard } from './deploymentOptionsCard';
import { ForecastCard, type ForecastView } from './forecastCard';
import { OptimizationCard, PlansCard } from './optimizationCard';
import { usePoll } from './poll';
import { RecommendationsCard, type RecommendationsView } from './recommendationsCard';
import { ServingCard } from './servingCard';

interface DeploymentView {
  status: DeploymentStatus;
  serving?: MonitorStatus;
  gateway?: GatewayStatus;
  metrics: MetricsSample[];
  temporalUiUrl: string;
}

function Stages({ s }: { s: DeploymentStatus }) {
  return html`<div class="card">
    <div class="stages">
      ${s.stages.map(
        (st) =>
          html`<div key=${st.stage} class=${`stage ${st.state}`}><b>${st.stage}</b><br /><small>${st.detail || st.state}</small></div>`,
      )}
    </div>
    <div class="pipeline"><progress id="pipeline-progress" value=${s.percent} max="100"></progress> ${s.percent}%</div>
  </div>`;
}

/** What the running activity last reported in its heartbeat (bytes uploaded, candidate measured, …). */
function ActivityCard({ items }: { items: ActivityProgress[] }) {
  if (!items.length) return null;
  const shown = (d: unknown) => (d === undefined ? '' : typeof d === 'string' ? d : JSON.stringify(d));
  return html`<div class="card" id="activity">
    <b>Running now</b>
    ${items.map(
      (a) => html`<div class="na">
        <code>${a.activity}</code> attempt ${a.attempt} ${shown(a.details)}
        ${a.lastFailure && html`<span class="err"> last failure: ${a.lastFailure}</span>`}
      </div>`,
    )}
  </div>`;
}

function BenchmarkCard({ b }: { b: NonNullable<DeploymentStatus['benchmark']> }) {
  const row = (label: string, m: { sizeBytes: number; latency: { p50Ms: number; p95Ms: number } }) =>
    html`<tr><td>${label}</td><td>${m.sizeBytes}</td><td>${m.latency.p50Ms.toFixed(3)}</td><td>${m.latency.p95Ms.toFixed(3)}</td></tr>`;
  return html`<div class="card">
    <b>Benchmark</b> (${b.plan} vs original, batch ${b.batchSize})
    <table>
      <thead><tr><th></th><th>size</th><th>p50 ms</th><th>p95 ms</th></tr></thead>
      <tbody>${row('original', b.original)}${row(b.plan, b.candidate)}</tbody>
    </table>
    max |diff| ${b.maxAbsDiff.toExponential(2)}
  </div>`;
}

export function DeploymentPage({ id }: { id: string }) {
  const view = usePoll(
    async () => {
      const [v, progress] = await Promise.all([
        apiJson<DeploymentView>(deploymentPath(id)),
        apiJson<ActivityProgress[]>(`${deploymentPath(id)}/progress`).catch(() => [] as ActivityProgress[]),
      ]);
      return { ...v, progress };
    },
    2000,
    [id],
  );
  const audit = usePoll(
    () => apiJson<AuditRow[]>(`/api/audit?${new URLSearchParams({ deployment: id, limit: '20' })}`),
    5000,
    [id],
  );
  const cost = usePoll(() => apiJson<CostView>(`${deploymentPath(id)}/cost`), 5000, [id]);
  const forecast = usePoll(() => apiJson<ForecastView>(`${deploymentPath(id)}/forecast`), 10_000, [id]);
  const recommendations = usePoll(() => apiJson<RecommendationsView>(`${deploymentPath(id)}/recommendations`), 30_000, [
    id,
  ]);
  const [approving, setApproving] = useState(false);
  const [approveError, setApproveError] = useState<string | undefined>(undefined);

  const v = view.data;
  const s = v?.status;
  const waiting = s?.phase === 'awaiting-approval';
  const approve = async (plan: string, option?: string) => {
    setApproving(true);
    setApproveError(undefined);
    try {
      // Signed in, the API records the key's name as the approver; with auth off, "dashboard".
      const chosen = option === undefined ? { plan } : { plan, option };
      const body = storedKey() ? chosen : { ...chosen, approvedBy: 'dashboard' };
      await apiJson(`${deploymentPath(id)}/approve`, { method: 'POST', body });
      view.reload();
      audit.reload();
    } catch (err) {
      setApproveError((err as Error).message);
    } finally {
      setApproving(false);
    }
  };
  const approveProps = waiting ? { approve, busy: approving } : {};

  return html`<h2 id="title">${s ? `${s.deploymentId} — ${s.phase}` : id}</h2>
    ${view.error && html`<p class="err" id="view-error">${view.error.message}</p>`}
    ${!v && !view.error && html`<p>Loading…</p>`}
    ${
      s &&
      v &&
      html`<${Stages} s=${s} />
      ${s.error && html`<div class="card err">${s.error}</div>`}
      ${s.phase !== 'live' && s.phase !== 'failed' && html`<${ActivityCard} items=${v.progress} />`}
      ${approveError && html`<p class="err" role="alert">${approveError}</p>`}
      ${s.optimization ? html`<${OptimizationCard} s=${s} ...${approveProps} />` : s.plans && html`<${PlansCard} s=${s} ...${approveProps} />`}
      ${s.deploymentOptions && html`<${DeploymentOptionsCard} s=${s} ...${approveProps} />`}
      ${s.benchmark && html`<${BenchmarkCard} b=${s.benchmark} />`}
      <div class="card">
        Endpoint: <code>${s.inferUrl || '-'}</code><br />
        Serving: ${v.serving ? `${v.serving.servingState} · ${v.serving.hibernations} hibernation(s)` : '-'}<br />
        <a href=${v.temporalUiUrl}>Temporal run</a>
      </div>
      ${v.gateway && html`<${ServingCard} g=${v.gateway} />`}
      <${MetricsCharts} points=${v.metrics} />
      ${cost.data && html`<${CostCard} c=${cost.data} />`}
      ${forecast.data && html`<${ForecastCard} f=${forecast.data} />`}
      ${
        recommendations.data &&
        html`<${RecommendationsCard} r=${recommendations.data} onApplied=${() => {
          recommendations.reload();
          view.reload();
          audit.reload();
        }} />`
      }`
    }
    ${
      audit.data &&
      audit.data.length > 0 &&
      html`<div class="card"><b>Changes</b><${AuditTable} rows=${audit.data} showDeployment=${false} /></div>`
    }`;
}
