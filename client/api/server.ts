/**
 * Ferry's HTTP API and dashboard. The dashboard is served from here and calls the same JSON API;
 * approvals from its buttons are the same validated Update the CLI sends, and chat/ops tools post
 * to the webhook, which sends the approval Signal.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FerryConfig } from '../../lib/config';
import { getPool } from '../../lib/db/pool';
import { FerryRepository } from '../../lib/db/repository';
import { FerryClient, FerryError, UnknownDeploymentError } from '../sdk';
import { dashboardPage, deploymentPage } from './pages';

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startApiServer(
  config: FerryConfig,
  port = config.api.port,
): Promise<{ url: string; close(): Promise<void> }> {
  const ferry = await FerryClient.connect(config);
  const repo = new FerryRepository(getPool(config.postgres.url));

  const routes: Array<[string, RegExp, (m: RegExpExecArray, req: http.IncomingMessage, url: URL) => Promise<unknown>]> =
    [
      ['GET', /^\/healthz$/, async () => ({ ok: true })],
      ['GET', /^\/api\/deployments$/, async () => ferry.list()],
      ['GET', /^\/api\/deployments\/([^/]+)$/, async (m) => deploymentView(ferry, repo, decodeURIComponent(m[1]))],
      [
        'POST',
        /^\/api\/deployments\/([^/]+)\/approve$/,
        async (m, req) => {
          const body = (await readJson(req)) as { plan?: string; approvedBy?: string };
          if (!body.plan) throw new HttpError(400, 'body needs a "plan"');
          return ferry.approve(decodeURIComponent(m[1]), body.plan, body.approvedBy ?? 'dashboard');
        },
      ],
      [
        'POST',
        /^\/api\/chatops\/approve$/,
        async (_m, req) => {
          const body = (await readJson(req)) as { deployment?: string; plan?: string; user?: string };
          if (!body.deployment || !body.plan) throw new HttpError(400, 'body needs "deployment" and "plan"');
          await ferry.approveBySignal(body.deployment, body.plan, body.user ?? 'chatops');
          return { accepted: true, deployment: body.deployment, plan: body.plan };
        },
      ],
      [
        'POST',
        /^\/api\/deployments$/,
        async (_m, req, url) => {
          // Raw ONNX bytes in the body, streamed to a temp file and then to the object store.
          const name = url.searchParams.get('name');
          if (!name) throw new HttpError(400, 'query parameter "name" is required');
          const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-api-upload-'));
          try {
            const file = path.join(dir, `${name}.onnx`);
            await pipeline(req, createWriteStream(file));
            return await ferry.deploy(file, {
              model: name,
              version: url.searchParams.get('version') ?? undefined,
              mode: url.searchParams.get('mode') === 'review' ? 'review' : 'one-click',
            });
          } finally {
            await rm(dir, { recursive: true, force: true });
          }
        },
      ],
    ];

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (req.method === 'GET' && url.pathname === '/') return sendHtml(res, dashboardPage(config));
      const page = /^\/deployments\/([^/]+)$/.exec(url.pathname);
      if (req.method === 'GET' && page) return sendHtml(res, deploymentPage(config, decodeURIComponent(page[1])));
      for (const [method, pattern, handler] of routes) {
        const m = pattern.exec(url.pathname);
        if (m && req.method === method) return sendJson(res, 200, await handler(m, req, url));
      }
      sendJson(res, 404, { error: `no route ${req.method} ${url.pathname}` });
    } catch (err) {
      const status =
        err instanceof HttpError
          ? err.status
          : err instanceof UnknownDeploymentError
            ? 404
            : err instanceof FerryError
              ? 400
              : 500;
      sendJson(res, status, { error: err instanceof Error ? err.message : String(err) });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, config.api.host, resolve);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await ferry.close();
    },
  };
}

async function deploymentView(ferry: FerryClient, repo: FerryRepository, ref: string) {
  const status = await ferry.status(ref);
  const [serving, row, metrics, gateway] = await Promise.all([
    ferry.serving(ref).catch(() => undefined),
    repo.getDeployment(status.deploymentId),
    repo.recentMetrics(status.deploymentId, 240),
    // Revisions, traffic split, replicas and autoscaler right now; absent before the deploy stage or when
    // the gateway is down (the rest of the page still renders).
    status.inferUrl ? ferry.gatewayStatus(status.deploymentId).catch(() => undefined) : undefined,
  ]);
  return {
    status,
    serving,
    gateway,
    deployment: row,
    metrics: metrics.reverse(),
    temporalUiUrl: ferry.temporalUiUrl(`deploy:${status.model}:${status.version}`),
  };
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function sendHtml(res: http.ServerResponse, html: string): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(html);
}
