/** The audit log: who changed what, when, from where (a key sees its project's entries, admin all). */
import { html } from 'htm/preact';
import type { AuditEntry } from '../../../lib/auth/audit';
import { apiJson } from './api';
import { time } from './format';
import { usePoll } from './poll';
import { deploymentHref, Link } from './router';

export type AuditRow = AuditEntry;

const detailText = (d: Record<string, unknown>) =>
  Object.entries(d)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');

export function AuditTable({ rows, showDeployment = true }: { rows: AuditRow[]; showDeployment?: boolean }) {
  return html`<table class="audit">
    <thead><tr><th>when</th><th>who</th><th>what</th>${showDeployment && html`<th>deployment</th>`}<th>detail</th><th>from</th></tr></thead>
    <tbody>
      ${rows.map(
        (e) => html`<tr key=${e.id}>
          <td>${time(e.at)}</td>
          <td>${e.project}/${e.keyName}</td>
          <td>${e.action}</td>
          ${showDeployment && html`<td>${e.deploymentId ? html`<${Link} href=${deploymentHref(e.deploymentId)}>${e.deploymentId}<//>` : ''}</td>`}
          <td class="w">${detailText(e.detail ?? {})}</td>
          <td>${e.source ?? ''}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

export function AuditPage() {
  const log = usePoll(() => apiJson<AuditRow[]>('/api/audit?limit=200'), 5000, []);
  return html`<h2>Audit log</h2>
    ${log.error && html`<p class="err">${log.error.message}</p>`}
    ${!log.data && !log.error && html`<p>Loading…</p>`}
    ${log.data && log.data.length === 0 && html`<p>No changes recorded yet.</p>`}
    ${log.data && log.data.length > 0 && html`<div class="card"><${AuditTable} rows=${log.data} /></div>`}`;
}
