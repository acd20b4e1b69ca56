/**
 * The dashboard's page: one static shell for every dashboard path, holding no data and no inline script
 * or style. It loads the bundle built from client/dashboard/web/, which reads the path and asks the JSON
 * API for everything else, so nothing from a URL or a record is ever written into HTML by the server.
 */

export const DASHBOARD_SCRIPT = '/assets/dashboard.js';
export const DASHBOARD_STYLE = '/assets/dashboard.css';

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ferry</title><link rel="icon" href="data:,"><link rel="stylesheet" href="${DASHBOARD_STYLE}"></head>
<body><div id="app"></div><script src="${DASHBOARD_SCRIPT}" defer></script></body></html>
`;

/**
 * Scripts and styles from this origin only, no inline script, no eval, requests to this origin only,
 * and no framing (against clickjacking). Inline style *attributes* stay off too; the bundle sets styles
 * through the DOM, which CSP allows.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Every other answer of the API (JSON): nothing in it may load or run, nor may it be framed. */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/** Headers on every dashboard answer (the page and its assets). */
export const DASHBOARD_SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};
