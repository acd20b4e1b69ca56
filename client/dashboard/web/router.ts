/**
 * The dashboard's pages by path: `/` (deployments), `/deployments/<id>` and `/audit`. The server answers
 * every one of these paths with the same static page; the id is read here from the URL and only ever
 * rendered as text.
 */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { page: 'deployments' }
  | { page: 'deployment'; id: string }
  | { page: 'audit' }
  | { page: 'not-found'; path: string };

export function routeOf(pathname: string): Route {
  if (pathname === '/' || pathname === '') return { page: 'deployments' };
  if (pathname === '/audit') return { page: 'audit' };
  const m = /^\/deployments\/([^/]+)$/.exec(pathname);
  if (m) {
    try {
      return { page: 'deployment', id: decodeURIComponent(m[1]!) };
    } catch {
      return { page: 'not-found', path: pathname };
    }
  }
  return { page: 'not-found', path: pathname };
}

const listeners = new Set<() => void>();

export function navigate(path: string): void {
  history.pushState(null, '', path);
  for (const l of listeners) l();
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => routeOf(location.pathname));
  useEffect(() => {
    const update = () => setRoute(routeOf(location.pathname));
    listeners.add(update);
    addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      removeEventListener('popstate', update);
    };
  }, []);
  return route;
}

/** A link that changes page without reloading (a plain click); other clicks behave as links do. */
export function Link({ href, children, ...rest }: { href: string; children?: unknown; [attr: string]: unknown }) {
  const onClick = (e: MouseEvent) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${onClick} ...${rest}>${children}</a>`;
}

export const deploymentHref = (id: string) => `/deployments/${encodeURIComponent(id)}`;
