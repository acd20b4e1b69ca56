/**
 * A deployment's recommendations (GET /api/deployments/:id/recommendations), each with its saving and
 * evidence, and an Apply button that does what `ferry apply <id>` does: the API works the advice out
 * again and refuses it, with the reason, when it was applied already or no longer holds.
 */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { Recommendation } from '../../../lib/analytics/recommendations';
import { apiJson } from './api';

export interface RecommendationsView {
  recommendations: Recommendation[];
}

const usd = (v: number) => (v >= 1 ? `$${v.toFixed(2)}` : `$${v.toPrecision(2)}`);

export function RecommendationsCard({ r, onApplied }: { r: RecommendationsView; onApplied: () => void }) {
  const [busy, setBusy] = useState<string | undefined>(undefined);
  const [message, setMessage] = useState<{ text: string; error: boolean } | undefined>(undefined);
  if (r.recommendations.length === 0 && !message) return null;
  const apply = async (id: string) => {
    setBusy(id);
    setMessage(undefined);
    try {
      const res = await apiJson<{ applied: Recommendation }>(`/api/recommendations/${encodeURIComponent(id)}/apply`, {
        method: 'POST',
        body: {},
      });
      setMessage({ text: `applied: ${res.applied.title}`, error: false });
      onApplied();
    } catch (err) {
      setMessage({ text: (err as Error).message, error: true });
    } finally {
      setBusy(undefined);
    }
  };
  return html`<div class="card" id="recommendations">
    <b>Recommendations</b>
    ${message && html`<p class=${message.error ? 'err' : ''} role="status">${message.text}</p>`}
    <table>
      <thead><tr><th>saving / month</th><th>what</th><th>evidence</th><th></th></tr></thead>
      <tbody>${r.recommendations.map(
        (x) => html`<tr key=${x.id}>
          <td>${usd(x.monthlySavingUsd)}</td><td>${x.title}</td><td><small>${x.evidence}</small></td>
          <td><button disabled=${busy !== undefined} onClick=${() => apply(x.id)}>Apply</button></td></tr>`,
      )}</tbody>
    </table>
  </div>`;
}
