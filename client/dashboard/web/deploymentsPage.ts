/** The list of deployments (refreshed every 3 s), with the upload card above it. */
import { html } from 'htm/preact';
import type { DeploymentListEntry } from '../../sdk/types';
import { apiJson } from './api';
import { time } from './format';
import { usePoll } from './poll';
import { deploymentHref, Link } from './router';
import { UploadCard } from './upload';

export function DeploymentsPage() {
  const list = usePoll(() => apiJson<DeploymentListEntry[]>('/api/deployments'), 3000, []);
  const rows = list.data;
  return html`<h2>Deployments</h2>
    <${UploadCard} />
    <div id="list">
      ${list.error && html`<p class="err">${list.error.message}</p>`}
      ${!rows && !list.error && html`<p>Loading…</p>`}
      ${rows && rows.length === 0 && html`<p>No deployments yet. Upload a model above, or run <code>ferry deploy ./model.onnx</code>.</p>`}
      ${
        rows &&
        rows.length > 0 &&
        html`<table>
          <thead><tr><th>Deployment</th><th>Stage</th><th>Run</th><th>Serving</th><th>Started</th></tr></thead>
          <tbody>
            ${rows.map(
              (r) => html`<tr key=${r.deploymentId}>
                <td><${Link} href=${deploymentHref(r.deploymentId)}>${r.deploymentId}<//></td>
                <td>${r.stage}</td><td>${r.status}</td><td>${r.serving ?? ''}</td><td>${time(r.startTime)}</td>
              </tr>`,
            )}
          </tbody>
        </table>`
      }
    </div>`;
}
