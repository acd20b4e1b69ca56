/** The gateway's view of a deployment: revisions and their traffic split, replicas, the autoscaler. */
import { html } from 'htm/preact';
import type { DeploymentStatus as GatewayStatus } from '../../../lib/targets/deploymentTarget';

const REVISION_COLORS = ['#2a6fdb', '#e08214', '#1a9850', '#8e44ad', '#d73027', '#17becf', '#7f7f7f', '#bcbd22'];
const colorOf = (i: number) => REVISION_COLORS[i % REVISION_COLORS.length]!;

export function ServingCard({ g }: { g: GatewayStatus }) {
  return html`<div class="card" id="serving">
    <b>Serving</b> — ${g.state}, ${g.replicas.length} replica(s) running, ${g.inFlight} request(s) in flight${
      g.heldRequests ? `, ${g.heldRequests} held` : ''
    }
    <div class="split" title="traffic split">
      ${g.revisions.map((r, i) =>
        r.percent > 0
          ? html`<div key=${r.name} style=${{ width: `${r.percent}%`, background: colorOf(i) }}>${r.name} ${r.percent}%</div>`
          : null,
      )}
    </div>
    <table>
      <thead><tr><th>revision</th><th>traffic</th><th>replicas ready / wanted</th><th>in flight</th><th>autoscaler</th></tr></thead>
      <tbody>
        ${g.revisions.map(
          (r, i) => html`<tr key=${r.name}>
            <td><span style=${{ color: colorOf(i) }}>■</span> <code>${r.name}</code></td>
            <td>${r.percent}%</td>
            <td>${r.readyReplicas} / ${r.desiredReplicas}</td>
            <td>${r.inFlight}</td>
            <td>${
              r.autoscaler
                ? html`${r.autoscaler.panic && html`<b>panic</b> · `}concurrency ${r.autoscaler.stableConcurrency.toFixed(2)} (stable), ${r.autoscaler.panicConcurrency.toFixed(2)} (panic)`
                : 'fixed'
            }</td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${
      g.traffic.rules.length > 0 &&
      html`<p class="na">header rules: ${g.traffic.rules.map((u) => `${u.header}: ${u.value} → ${u.revision}`).join('; ')}</p>`
    }
    <p class="na">
      ${
        g.autoscaling
          ? `autoscaling ${g.autoscaling.minReplicas}–${g.autoscaling.maxReplicas} replicas, target ${g.autoscaling.targetInFlight} in flight per replica`
          : 'fixed replica count'
      } · ${g.scaleToZeroAfterMs == null ? 'no scale to zero' : `scale to zero after ${Math.round(g.scaleToZeroAfterMs / 1000)} s idle`}
      · ${g.coldStarts} cold start(s)${g.lastWakeMs != null ? `, last wake ${g.lastWakeMs} ms` : ''}
    </p>
    ${
      g.scaleEvents.length > 0 &&
      html`<p class="na">recent scaling: ${g.scaleEvents
        .slice(-5)
        .reverse()
        .map((e) => `${e.revision} ${e.from}→${e.to} (${e.reason}, ${new Date(e.at).toLocaleTimeString()})`)
        .join('; ')}</p>`
    }
  </div>`;
}
