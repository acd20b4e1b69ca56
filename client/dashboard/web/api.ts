/**
 * How the dashboard talks to the API: same origin, the API key (when signed in) only ever in the
 * Authorization header, kept in sessionStorage (this tab only, gone when it closes), never in a cookie.
 */

const KEY_ITEM = 'ferry.apiKey';

export function storedKey(): string | undefined {
  return sessionStorage.getItem(KEY_ITEM) ?? undefined;
}

export function storeKey(key: string | undefined): void {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

/** An answer of the API that was not 2xx, with the API's own message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Listeners told when the API asks for a key (401), so the app can show the sign-in form. */
const unauthorizedListeners = new Set<(message: string) => void>();
export function onUnauthorized(listener: (message: string) => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

function authHeaders(key = storedKey()): Record<string, string> {
  return key ? { authorization: `Bearer ${key}` } : {};
}

function failure(status: number, body: unknown, fallback: string): ApiError {
  const message =
    body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string'
      ? (body as { error: string }).error
      : fallback;
  if (status === 401) for (const l of unauthorizedListeners) l(message);
  return new ApiError(status, message);
}

export async function apiJson<T>(
  path: string,
  opts: { method?: string; body?: unknown; key?: string } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...authHeaders(opts.key) };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method: opts.method ?? 'GET',
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    credentials: 'omit',
    cache: 'no-store',
  });
  const body = await res.json().catch(() => undefined);
  if (!res.ok) throw failure(res.status, body, `${res.status} ${res.statusText}`);
  return body as T;
}

export const deploymentPath = (id: string) => `/api/deployments/${encodeURIComponent(id)}`;

/**
 * Streams a file to POST /api/deployments (the CLI's route) as the raw body. XMLHttpRequest, because
 * its upload progress events are what fetch does not give; the browser reads the file from disk as it sends.
 */
export function uploadModel<T>(
  file: Blob,
  query: Record<string, string>,
  onProgress: (sent: number, total: number) => void,
): { done: Promise<T>; abort(): void } {
  const xhr = new XMLHttpRequest();
  const done = new Promise<T>((resolve, reject) => {
    xhr.open('POST', `/api/deployments?${new URLSearchParams(query)}`);
    xhr.withCredentials = false;
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response as T);
      else reject(failure(xhr.status, xhr.response, `upload failed: ${xhr.status} ${xhr.statusText}`));
    };
    xhr.onerror = () => reject(new ApiError(0, 'upload failed: the connection to the API broke'));
    xhr.onabort = () => reject(new ApiError(0, 'upload cancelled'));
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}
