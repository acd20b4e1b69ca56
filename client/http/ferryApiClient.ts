/**
 * The typed HTTP client of Ferry's API (client/api): what the CLI, scripts and other programs use with an
 * API key. Requests and answers follow the route schemas in client/api/schemas.ts; an error answer becomes
 * a `FerryApiError` carrying the HTTP status and the server's message.
 */

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import type { Recommendation } from '../../lib/analytics/recommendations';
import type { AuditEntry } from '../../lib/auth/audit';
import type { ApiKeyRow } from '../../lib/auth/keyStore';
import type { Scope } from '../../lib/auth/scopes';

export class FerryApiError extends Error {
  override name = 'FerryApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ApiDeployOptions {
  name: string;
  version?: string;
  mode?: 'one-click' | 'review';
  replicas?: number;
  public?: boolean;
  canary?: number;
  canaryOf?: string;
  onUploadProgress?: (sentBytes: number, totalBytes: number) => void;
}

export class FerryApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly key: string | undefined,
  ) {}

  private async call<T>(method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<T> {
    const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
    if (this.key) headers.authorization = `Bearer ${this.key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        ...init,
        method,
        headers,
        body: body !== undefined ? JSON.stringify(body) : init.body,
        ...(init.body instanceof ReadableStream ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (err) {
      // fetch says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND, a bad port) is its cause.
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new FerryApiError(
        0,
        `cannot reach Ferry's API at ${this.baseUrl} (${why}): start it with \`ferry up\`, or set FERRY_API_URL`,
      );
    }
    const text = await res.text();
    const parsed = text ? safeJson(text) : undefined;
    if (!res.ok) {
      const message = (parsed as { error?: string } | undefined)?.error ?? `${res.status} ${res.statusText}`;
      throw new FerryApiError(res.status, message);
    }
    return parsed as T;
  }

  private dep(ref: string, suffix = ''): string {
    return `/api/deployments/${encodeURIComponent(ref)}${suffix}`;
  }

  list() {
    return this.call<Array<Record<string, unknown>>>('GET', '/api/deployments');
  }
  deployment(ref: string) {
    return this.call<Record<string, unknown>>('GET', this.dep(ref));
  }
  progress(ref: string) {
    return this.call<unknown[]>('GET', this.dep(ref, '/progress'));
  }
  serving(ref: string) {
    return this.call<Record<string, unknown>>('GET', this.dep(ref, '/serving'));
  }
  approve(ref: string, plan: string, approvedBy?: string) {
    return this.call<Record<string, unknown>>('POST', this.dep(ref, '/approve'), { plan, approvedBy });
  }
  setTraffic(ref: string, change: { split?: Record<string, number>; rules?: unknown[] }) {
    return this.call<Record<string, unknown>>('PUT', this.dep(ref, '/traffic'), change);
  }
  setScaling(ref: string, change: Record<string, unknown>) {
    return this.call<Record<string, unknown>>('PUT', this.dep(ref, '/scaling'), change);
  }
  promote(ref: string, revision: string) {
    return this.call<Record<string, unknown>>('POST', this.dep(ref, '/promote'), { revision });
  }
  rollback(ref: string) {
    return this.call<Record<string, unknown>>('POST', this.dep(ref, '/rollback'), {});
  }
  undeploy(ref: string) {
    return this.call<Record<string, unknown>>('POST', this.dep(ref, '/undeploy'), {});
  }
  recommendations(ref: string) {
    return this.call<{ deploymentId: string; recommendations: Recommendation[] }>(
      'GET',
      this.dep(ref, '/recommendations'),
    );
  }
  applyRecommendation(id: string) {
    return this.call<{ applied: Recommendation; status: Record<string, unknown> }>(
      'POST',
      `/api/recommendations/${encodeURIComponent(id)}/apply`,
      {},
    );
  }

  /** Streams the file to the API (never read into memory whole), reporting bytes sent. */
  async deploy(filePath: string, opts: ApiDeployOptions) {
    const total = (await stat(filePath)).size;
    let sent = 0;
    const counted = createReadStream(filePath).pipe(
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          sent += chunk.length;
          opts.onUploadProgress?.(sent, total);
          done(null, chunk);
        },
      }),
    );
    const q = new URLSearchParams({ name: opts.name });
    for (const k of ['version', 'mode', 'replicas', 'public', 'canary', 'canaryOf'] as const) {
      if (opts[k] !== undefined) q.set(k, String(opts[k]));
    }
    return this.call<Record<string, unknown>>('POST', `/api/deployments?${q}`, undefined, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(total) },
      body: Readable.toWeb(counted) as ReadableStream,
    });
  }

  createKey(project: string, scopes: Scope[], name?: string) {
    return this.call<{ key: string; row: ApiKeyRow }>('POST', '/api/keys', { project, scopes, name });
  }
  listKeys(project?: string) {
    return this.call<ApiKeyRow[]>('GET', `/api/keys${project ? `?project=${encodeURIComponent(project)}` : ''}`);
  }
  revokeKey(ref: string) {
    return this.call<ApiKeyRow>('DELETE', `/api/keys/${encodeURIComponent(ref)}`);
  }
  audit(opts: { deployment?: string; limit?: number } = {}) {
    const q = new URLSearchParams();
    if (opts.deployment) q.set('deployment', opts.deployment);
    if (opts.limit) q.set('limit', String(opts.limit));
    return this.call<AuditEntry[]>('GET', `/api/audit${q.size ? `?${q}` : ''}`);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { error: text.slice(0, 300) };
  }
}
