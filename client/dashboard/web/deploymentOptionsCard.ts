/**
 * The deploy stage's considered deployment options for a plan: monthly cost as bars and the table, the
 * option taken (or the engine's choice, while the run waits) marked; while the run waits, a button on
 * each option that can be deployed approves the plan with it.
 */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { ConsideredOption, DeploymentStatus } from '../../../workflows/types';

export interface OptionApproveProps {
  /** Set while the run waits for an approval. */
  approve?: (plan: string, option: string) => void;
  busy?: boolean;
}

function money(usd: number): string {
  return usd >= 100 ? `$${usd.toFixed(0)}` : `$${usd.toFixed(2)}`;
}

function statusOf(o: ConsideredOption): string {
  if (!o.feasible) return o.reason ?? 'infeasible';
  return o.deployable ? 'deployable here' : (o.deployNote ?? 'not configured');
}

export function DeploymentOptionsCard({ s, approve, busy }: OptionApproveProps & { s: DeploymentStatus }) {
  const tables = s.deploymentOptions!;
  const plans = Object.keys(tables);
  const decided = s.deploymentDecision;
  const initial =
    decided?.plan ?? s.chosenPlan?.plan ?? (s.defaultPlan && tables[s.defaultPlan] ? s.defaultPlan : plans[0]);
  const [picked, setPicked] = useState<string | undefined>(undefined);
  const plan = picked && tables[picked] ? picked : initial;
  const t = tables[plan];
  const chosen = decided && decided.plan === plan ? decided.option : t.chosen;
  const max = Math.max(...t.options.map((o) => o.monthlyCostUsd), 1e-9);
  const c = t.constraints;
  return html`<div class="card" id="deployment-options">
    <b>Deployment options</b> for plan
    <select aria-label="plan" value=${plan} onChange=${(e: Event) => setPicked((e.target as HTMLSelectElement).value)}>
      ${plans.map((p) => html`<option value=${p}>${p}</option>`)}
    </select>
    — ${t.considered} sized; traffic ${t.profile.description}, SLO p95 ${c.sloP95Ms} ms${
      c.budgetUsdPerMonth !== undefined ? `, budget $${c.budgetUsdPerMonth}/month` : ''
    }; catalog ${t.catalog.snapshotDate}
    ${
      decided && decided.plan === plan
        ? html`<p id="deployed-option">Deployed: <code>${decided.option}</code> on ${decided.target}, ~${money(decided.monthlyCostUsd)}/month (${decided.source}${decided.approvedBy ? `, by ${decided.approvedBy}` : ''})</p>`
        : !chosen && html`<p class="err">No option: ${t.error}</p>`
    }
    <table class="opt">
      <thead><tr><th></th><th>strategy</th><th>provider</th><th>region</th><th>instance</th><th>$/month</th><th></th><th>p95</th><th>risk</th><th>status</th><th></th></tr></thead>
      <tbody>
        ${t.options.map(
          (o) => html`<tr key=${o.id} class=${o.id === chosen ? 'chosen' : o.feasible ? '' : 'rej'} title=${o.why}>
            <td>${o.id === chosen ? '✔' : ''}</td>
            <td>${o.strategy}</td><td>${o.provider}</td><td>${o.region}</td><td>${o.instanceType}</td>
            <td>${money(o.monthlyCostUsd)}</td>
            <td><div class="costbar" style=${{ width: `${((120 * o.monthlyCostUsd) / max).toFixed(1)}px`, background: o.id === chosen ? '#1a9850' : o.feasible ? '#2a6fdb' : '#ccc' }}></div></td>
            <td>${o.p95Ms === null ? '-' : `${o.p95Ms} ms`}</td>
            <td>${o.risk}</td>
            <td class="w">${statusOf(o)}</td>
            <td>${
              approve &&
              o.feasible &&
              o.deployable &&
              html`<button disabled=${busy} title=${`approve plan ${plan} with ${o.id}`} onClick=${() => approve(plan, o.id)}>Deploy with this</button>`
            }</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}
