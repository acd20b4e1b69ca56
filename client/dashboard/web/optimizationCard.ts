/**
 * The optimize stage's trade-off table: every candidate measured against the original in one run, with
 * an Approve button on each plan within the accuracy budget while the run waits for an approval.
 */
import { html } from 'htm/preact';
import type { DeploymentStatus, OptimizationCandidate } from '../../../workflows/types';
import { bytes, ms } from './format';

type Measured = OptimizationCandidate & { row: NonNullable<OptimizationCandidate['row']> };

function Bars({
  title,
  rows,
  value,
  fmt,
  color,
}: {
  title: string;
  rows: Measured[];
  value: (c: Measured) => number;
  fmt: (v: number) => string;
  color: string;
}) {
  const max = Math.max(...rows.map(value), 1e-12);
  return html`<div>
    <b>${title}</b>
    ${rows.map(
      (r) => html`<div class="bar">
        <span class=${r.withinBudget ? 'l' : 'l rej'}>${r.id}</span>
        <div style=${{ width: `${((200 * value(r)) / max).toFixed(1)}px`, background: r.withinBudget ? color : '#ccc' }}></div>
        <span>${fmt(value(r))}</span>
      </div>`,
    )}
  </div>`;
}

export interface ApproveProps {
  /** Set while the run waits for an approval. */
  approve?: (plan: string) => void;
  busy?: boolean;
}

function chosenText(s: DeploymentStatus): string {
  const c = s.chosenPlan!;
  return `chosen (${c.source}${c.approvedBy ? `, by ${c.approvedBy}` : ''})`;
}

function Action({
  s,
  id,
  withinBudget,
  rejection,
  approve,
  busy,
}: ApproveProps & {
  s: DeploymentStatus;
  id: string;
  withinBudget: boolean;
  rejection?: string;
}) {
  if (!withinBudget) {
    const why = (rejection ?? '').replace('outside the accuracy budget: ', '');
    return html`<span class="w" title=${rejection ?? ''}>rejected: ${why}</span>`;
  }
  if (approve) return html`<button disabled=${busy} onClick=${() => approve(id)}>Approve</button>`;
  if (s.chosenPlan?.plan === id) return chosenText(s);
  return '';
}

export function OptimizationCard({ s, ...approve }: ApproveProps & { s: DeploymentStatus }) {
  const t = s.optimization!;
  const measured = t.candidates.filter((c): c is Measured => c.state === 'measured' && c.row !== undefined);
  const others = t.candidates.filter((c) => c.state !== 'measured');
  return html`<div class="card" id="plans">
    <b>Optimization plans</b> — every candidate measured against the original in one run${
      approve.approve && `; waiting for approval until ${s.approvalDeadline ?? '-'}`
    }
    <div class="bars">
      <${Bars} title="p50 latency, batch 1" rows=${measured} value=${(r: Measured) => r.row.batch1.p50Ms} fmt=${ms} color="#2a6fdb" />
      <${Bars} title="size on disk" rows=${measured} value=${(r: Measured) => r.row.sizeBytes} fmt=${bytes} color="#1a9850" />
    </div>
    <table class="opt">
      <thead><tr>
        <th>candidate</th><th></th><th>size</th><th>gzip</th><th>load</th><th>p50 b1</th><th>p95 b1</th>
        <th>p50 large batch</th><th>peak RSS</th><th>cosine</th><th>top-1</th><th>$/1M</th><th></th>
      </tr></thead>
      <tbody>
        ${measured.map((c) => {
          const r = c.row;
          const lb = r.largeBatch;
          return html`<tr key=${c.id} class=${c.withinBudget ? '' : 'rej'}>
            <td>${c.id === t.best ? '★ ' : ''}<code>${c.id}</code></td>
            <td class="w">${c.title}</td>
            <td>${bytes(r.sizeBytes)} (${r.vsOriginal.sizeRatio.toFixed(2)}x)</td>
            <td>${bytes(r.gzipBytes)}</td>
            <td>${r.loadMs.toFixed(1)} ms</td>
            <td>${ms(r.batch1.p50Ms)} (${r.vsOriginal.speedupP50.toFixed(2)}x)</td>
            <td>${ms(r.batch1.p95Ms)}</td>
            <td>${lb ? `${ms(lb.p50Ms)} @${lb.batchSize}` : '-'}</td>
            <td>${bytes(r.peakRssBytes)}</td>
            <td>${r.agreement.cosine.toFixed(5)}</td>
            <td>${r.agreement.top1 == null ? '-' : r.agreement.top1.toFixed(3)}</td>
            <td>${r.costPerMillionUsd.toPrecision(3)}</td>
            <td><${Action} s=${s} id=${c.id} withinBudget=${c.withinBudget} rejection=${c.rejection} ...${approve} /></td>
          </tr>`;
        })}
      </tbody>
    </table>
    ${others.map(
      (c) =>
        html`<div class="na"><code>${c.id}</code> ${c.state === 'not-applicable' ? 'not applicable' : 'failed'}: ${c.reason}</div>`,
    )}
    <p class="na">budget: cosine ≥ ${t.budget.minCosine}, top-1 ≥ ${t.budget.minTop1} · ★ = best within the budget · ${t.score}</p>
  </div>`;
}

/** Runs recorded before the trade-off table existed: the plans alone. */
export function PlansCard({ s, ...approve }: ApproveProps & { s: DeploymentStatus }) {
  return html`<div class="card" id="plans">
    <b>Optimization plans</b>${approve.approve && ` — waiting for approval until ${s.approvalDeadline ?? '-'}`}
    <table>
      <tbody>
        ${(s.plans ?? []).map(
          (p) => html`<tr key=${p.id}>
            <td>${p.id === s.defaultPlan ? '★ ' : ''}<code>${p.id}</code></td>
            <td>${p.title}</td><td>${p.expectedEffect}</td>
            <td><${Action} s=${s} id=${p.id} withinBudget=${p.withinBudget !== false} rejection=${p.rejection} ...${approve} /></td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}
