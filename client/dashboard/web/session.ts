/** Who the dashboard acts as: GET /api/session with the stored key (or none, when auth is off). */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { ApiError, apiJson, storeKey } from './api';

export interface Session {
  auth: boolean;
  keyName: string;
  project: string;
  scopes: string[];
  temporalUiUrl: string;
}

export const loadSession = (key?: string) => apiJson<Session>('/api/session', key ? { key } : {});

/** The sign-in form: the key is checked against the API before it is kept for this tab. */
export function SignIn({ message, onSignedIn }: { message?: string; onSignedIn(s: Session): void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const entered = key.trim();
    if (!entered) return;
    setBusy(true);
    try {
      const session = await loadSession(entered);
      storeKey(entered);
      setKey('');
      onSignedIn(session);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'that key was refused' : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="card signin">
    <h2>Sign in</h2>
    <p>${message ?? 'This Ferry asks for an API key.'} The key stays in this tab only and is sent as an Authorization header.</p>
    <form onSubmit=${submit}>
      <input type="password" name="api-key" autocomplete="off" placeholder="ferry API key" value=${key}
        onInput=${(e: Event) => setKey((e.target as HTMLInputElement).value)} />
      <button type="submit" disabled=${busy}>Sign in</button>
    </form>
    ${error && html`<p class="err" role="alert">${error}</p>`}
  </div>`;
}
