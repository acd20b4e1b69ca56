/**
 * The dashboard: Preact components written with htm, so every value is rendered as text or as a
 * property, never parsed as markup. The page shell (client/api/pages.ts) loads only this bundle.
 */
import 'uplot/dist/uPlot.min.css';
import './dashboard.css';
import { html, render } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, onUnauthorized, storedKey, storeKey } from './api';
import { AuditPage } from './auditPage';
import { DeploymentPage } from './deploymentPage';
import { DeploymentsPage } from './deploymentsPage';
import { Link, useRoute } from './router';
import { loadSession, type Session, SignIn } from './session';

function App() {
  const route = useRoute();
  const [session, setSession] = useState<Session | undefined>(undefined);
  const [signInNeeded, setSignInNeeded] = useState<string | undefined>(undefined);
  const [startError, setStartError] = useState<string | undefined>(undefined);

  useEffect(() => {
    const off = onUnauthorized((message) => {
      storeKey(undefined);
      setSession(undefined);
      setSignInNeeded(message);
    });
    loadSession(storedKey())
      .then(setSession)
      .catch((err: Error) => {
        // A 401 has already asked for the sign-in form (onUnauthorized); anything else is shown.
        if (!(err instanceof ApiError && err.status === 401)) setStartError(err.message);
      });
    return off;
  }, []);

  const signOut = () => {
    storeKey(undefined);
    setSession(undefined);
    setSignInNeeded('Signed out.');
  };

  let body: unknown;
  if (signInNeeded !== undefined && !session) {
    body = html`<${SignIn}
      message=${signInNeeded}
      onSignedIn=${(s: Session) => {
        setSession(s);
        setSignInNeeded(undefined);
      }}
    />`;
  } else if (!session) {
    body = startError ? html`<p class="err">${startError}</p>` : html`<p>Loading…</p>`;
  } else if (route.page === 'deployments') body = html`<${DeploymentsPage} />`;
  else if (route.page === 'deployment') body = html`<${DeploymentPage} id=${route.id} />`;
  else if (route.page === 'audit') body = html`<${AuditPage} />`;
  else body = html`<h2>Not found</h2><p>No page at <code>${route.path}</code>.</p>`;

  return html`<header>
      <b>Ferry</b> · <${Link} href="/">deployments<//> · <${Link} href="/audit">audit log<//>
      ${session && html` · <a href=${session.temporalUiUrl}>Temporal UI</a>`}
      <span class="who">
        ${session && (session.auth ? html`signed in as <b>${session.project}/${session.keyName}</b> <button class="link" onClick=${signOut}>sign out</button>` : 'auth off')}
      </span>
    </header>
    <main>${body}</main>`;
}

render(html`<${App} />`, document.getElementById('app')!);
