/**
 * Ferry's inference server: the Open Inference Protocol (KServe v2) REST API over Node's http module,
 * with the binary tensor data extension, serving the ONNX models listed in `<modelDir>/ferry-models.json`
 * with onnxruntime (each model with its own session options and, if asked, dynamic batching: see
 * modelScheduler.ts), plus Prometheus metrics at /metrics (see inferenceMetrics.ts). It listens before
 * the models are loaded so liveness answers at once and readiness turns true when every session is loaded.
 */

import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { version as ferryVersion } from '../../package.json';
import { type BinaryCursor, INFERENCE_HEADER_CONTENT_LENGTH, splitBinaryBody } from './binaryTensors';
import {
  httpStatusOf,
  InferenceFailedError,
  InvalidInputError,
  MethodNotAllowedError,
  NotReadyError,
  RequestTooLargeError,
  RouteNotFoundError,
} from './errors';
import { InferenceMetrics, type ModelCounters, type ServerTelemetry } from './inferenceMetrics';
import { inferParsedRequest } from './inferRequest';
import { type LoadedModel, loadModelRepository, type ModelRepository } from './modelRepository';
import { ModelScheduler } from './modelScheduler';
import { DEFAULT_MAX_BATCH } from './requestLimits';
import { createStandaloneTelemetry } from './telemetry';
import { type EncodedResponse, parseInferRequest } from './tensorCodec';

export interface InferenceServerOptions {
  modelDir: string;
  port: number;
  host?: string;
  /**
   * Listen on this Unix domain socket instead of host:port (a stale socket file is replaced). A gateway on
   * the same machine reaches its replicas cheaper this way than through TCP on loopback.
   */
  socketPath?: string;
  /** Where metrics go; by default a private meter provider + Prometheus exporter. */
  telemetry?: ServerTelemetry;
  /** Largest request body accepted (bytes). Default 64 MiB. */
  maxBodyBytes?: number;
  /**
   * Most rows one request may carry along a first dimension the model leaves dynamic; more is a 400.
   * Default 4096 (requestLimits.ts).
   */
  maxBatch?: number;
  /**
   * A client that has not sent a whole request head after this long, or a whole request after
   * `requestTimeoutMs`, has its connection closed (slow or stalled clients). Defaults 66 s and 300 s.
   */
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** On close, how long in-flight requests may take before their connections are cut. Default 30 s. */
  drainTimeoutMs?: number;
  /** Where the server reports things worth a line in its log (a model found not batchable). Default: none. */
  log?: (message: string) => void;
}

export interface InferenceServer {
  url: string;
  /** Stops accepting, lets in-flight requests finish, then releases the sessions. */
  close(): Promise<void>;
}

const JSON_HEADERS = { 'content-type': 'application/json' } as const;

export async function startInferenceServer(opts: InferenceServerOptions): Promise<InferenceServer> {
  const host = opts.host ?? '127.0.0.1';
  const telemetry = opts.telemetry ?? createStandaloneTelemetry();
  const metrics = new InferenceMetrics(telemetry);
  const unknownModelCounters = metrics.countersFor('', '');
  const maxBodyBytes = opts.maxBodyBytes ?? 64 * 1024 * 1024;
  const limits = { maxBatch: opts.maxBatch ?? DEFAULT_MAX_BATCH };
  const headersTimeout = opts.headersTimeoutMs ?? 66_000;
  const requestTimeout = Math.max(opts.requestTimeoutMs ?? 300_000, headersTimeout);

  let repository: ModelRepository | undefined;
  let servingByModel = new Map<LoadedModel, { counters: ModelCounters; scheduler: ModelScheduler }>();
  let closing = false;
  let inFlight = 0;
  let drained: (() => void) | undefined;

  // Node checks these timeouts every connectionsCheckingInterval: often enough for the shortest of them.
  const checkEveryMs = Math.max(50, Math.min(30_000, Math.floor(headersTimeout / 4)));
  const server = http.createServer({ connectionsCheckingInterval: checkEveryMs }, (req, res) => {
    inFlight++;
    res.once('close', () => {
      if (--inFlight === 0 && drained) drained();
    });
    routeRequest(req, res).catch((err) => sendFailure(res, err));
  });
  // Idle keep-alive connections stay open longer than the gateway's pool keeps them (30 s), so the
  // gateway never reuses a connection at the moment the server closes it.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = headersTimeout;
  server.requestTimeout = requestTimeout;

  function sendJson(
    res: http.ServerResponse,
    status: number,
    body: string,
    extraHeaders?: http.OutgoingHttpHeaders,
  ): void {
    if (res.headersSent) return void res.destroy();
    const headers: http.OutgoingHttpHeaders = {
      ...JSON_HEADERS,
      'content-length': Buffer.byteLength(body),
      ...extraHeaders,
    };
    if (closing) headers.connection = 'close';
    res.writeHead(status, headers);
    res.end(body);
  }

  /** Answers with the error's status (httpStatusOf) and message, and the headers that go with it. */
  function sendFailure(res: http.ServerResponse, err: unknown): void {
    const status = httpStatusOf(err);
    const message =
      status === 500 && !(err instanceof InferenceFailedError) ? `internal error: ${messageOf(err)}` : messageOf(err);
    const headers: http.OutgoingHttpHeaders = {};
    if (err instanceof MethodNotAllowedError) headers.allow = err.allow;
    if (err instanceof NotReadyError && err.retryAfterSeconds !== undefined)
      headers['retry-after'] = String(err.retryAfterSeconds);
    // The rest of the body was not read: the connection cannot carry another request.
    if (err instanceof RequestTooLargeError) headers.connection = 'close';
    sendJson(res, status, JSON.stringify({ error: message }), headers);
  }

  async function routeRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q === -1 ? rawUrl : rawUrl.slice(0, q);

    if (path === '/metrics') {
      if (!telemetry.metricsHandler)
        throw new RouteNotFoundError('this server was built without metrics (an edge image has no OpenTelemetry)');
      if (closing) res.setHeader('connection', 'close');
      return telemetry.metricsHandler(req, res);
    }
    const parts = path.split('/'); // ['', 'v2', ...]
    if (parts[1] !== 'v2')
      throw new RouteNotFoundError(`no route for ${path}: this server speaks the Open Inference Protocol under /v2`);
    if (parts.length === 2 || (parts.length === 3 && parts[2] === '')) {
      expectMethod(req, 'GET');
      return sendJson(
        res,
        200,
        JSON.stringify({ name: 'ferry', version: ferryVersion, extensions: ['binary_tensor_data'] }),
      );
    }
    if (parts[2] === 'health' && parts.length === 4) {
      expectMethod(req, 'GET');
      if (parts[3] === 'live') return sendJson(res, 200, '{"live":true}');
      if (parts[3] === 'ready')
        return sendJson(res, repository && !closing ? 200 : 503, `{"ready":${Boolean(repository && !closing)}}`);
    }
    if (parts[2] === 'models' && parts.length >= 4) {
      // /v2/models/{name}[/versions/{v}][/ready|/infer]
      let name: string;
      let version: string | undefined;
      let action: string | undefined;
      try {
        name = decodeURIComponent(parts[3]);
        let rest = 4;
        if (parts[4] === 'versions' && parts.length >= 6) {
          version = decodeURIComponent(parts[5]);
          rest = 6;
        }
        if (parts.length > rest + 1) throw new RouteNotFoundError(`no route for ${path}`);
        action = parts[rest];
      } catch (err) {
        if (err instanceof URIError) throw new InvalidInputError(`malformed URL ${path}`);
        throw err;
      }
      if (action === 'infer') return infer(req, res, name, version);
      expectMethod(req, 'GET');
      if (!repository) throw new NotReadyError('models are still loading');
      const model = repository.resolve(name, version);
      if (action === undefined) return sendJson(res, 200, modelMetadata(repository, model));
      if (action === 'ready')
        return sendJson(res, 200, JSON.stringify({ name: model.name, version: model.version, ready: true }));
      if (action === 'config') return sendJson(res, 200, modelConfig(model, servingByModel.get(model)!.scheduler));
    }
    throw new RouteNotFoundError(`no route for ${req.method} ${path}`);
  }

  function expectMethod(req: http.IncomingMessage, method: string): void {
    if (req.method === method || (method === 'GET' && req.method === 'HEAD')) return;
    throw new MethodNotAllowedError(req.method, method);
  }

  async function infer(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    name: string,
    version: string | undefined,
  ): Promise<void> {
    const started = performance.now();
    expectMethod(req, 'POST');
    if (!repository) throw new NotReadyError('models are still loading', 1);
    let model: LoadedModel;
    try {
      model = repository.resolve(name, version);
    } catch (err) {
      unknownModelCounters.requests++;
      unknownModelCounters.countError(httpStatusOf(err));
      throw err;
    }
    const { counters, scheduler } = servingByModel.get(model)!;
    counters.requests++;
    counters.inFlight++;
    try {
      const raw = await readBody(req, maxBodyBytes);
      const headerLength = req.headers[INFERENCE_HEADER_CONTENT_LENGTH];
      let jsonText: string;
      let binary: BinaryCursor | undefined;
      if (typeof headerLength === 'string') ({ json: jsonText, binary } = splitBinaryBody(raw, headerLength));
      else jsonText = raw.toString('utf8');
      const body = parseInferRequest(parseJson(jsonText));
      const { outcome, encoded } = await inferParsedRequest(model, scheduler, body, randomUUID(), binary, limits);
      metrics.recordQueueAndCompute(counters, outcome.queueMs / 1000, outcome.computeMs / 1000);
      sendInferResponse(res, encoded);
    } catch (err) {
      const failure = httpStatusOf(err) === 500 ? new InferenceFailedError(`inference failed: ${messageOf(err)}`) : err;
      counters.countError(httpStatusOf(failure));
      sendFailure(res, failure);
    } finally {
      counters.inFlight--;
      metrics.recordDuration(counters, (performance.now() - started) / 1000);
    }
  }

  function sendInferResponse(res: http.ServerResponse, encoded: EncodedResponse): void {
    if (encoded.binary.length === 0) {
      sendJson(res, 200, encoded.json);
      return;
    }
    const header = Buffer.from(encoded.json, 'utf8');
    let length = header.length;
    for (const b of encoded.binary) length += b.length;
    const headers: http.OutgoingHttpHeaders = {
      'content-type': 'application/octet-stream',
      'content-length': length,
      'inference-header-content-length': header.length,
    };
    if (closing) headers.connection = 'close';
    res.writeHead(200, headers);
    res.cork();
    res.write(header);
    for (const b of encoded.binary) res.write(b);
    res.end();
    res.uncork();
  }

  if (opts.socketPath) rmSync(opts.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const listening = () => {
      server.off('error', reject);
      resolve();
    };
    if (opts.socketPath) server.listen(opts.socketPath, listening);
    else server.listen(opts.port, host, listening);
  });
  // For a socket, `url` names it (unix:<path>); HTTP clients need the socketPath option to reach it.
  const url = opts.socketPath
    ? `unix:${opts.socketPath}`
    : `http://${host.includes(':') ? `[${host}]` : host}:${(server.address() as AddressInfo).port}`;

  async function close(): Promise<void> {
    if (closing) return;
    closing = true;
    // Batches waiting for mates run now; the requests in them are in flight and drained below.
    for (const { scheduler } of servingByModel.values()) void scheduler.flush();
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    if (inFlight > 0) {
      const drainedNow = new Promise<void>((resolve) => (drained = resolve));
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, opts.drainTimeoutMs ?? 30_000).unref());
      await Promise.race([drainedNow, timeout]);
    }
    // Connections that stayed open after their last response (keep-alive) are idle now.
    server.closeAllConnections();
    await serverClosed;
    // Requests cut off by the drain timeout may still sit in a queue: run them out before the sessions go.
    await Promise.all([...servingByModel.values()].map((s) => s.scheduler.flush()));
    await repository?.release();
    await telemetry.shutdown?.();
  }

  try {
    const loaded = await loadModelRepository(opts.modelDir);
    const observeRun = (model: LoadedModel, rows: number) =>
      metrics.recordRun(servingByModel.get(model)!.counters, rows);
    servingByModel = new Map(
      loaded.models.map((m) => {
        const counters = metrics.countersFor(m.name, m.version);
        metrics.recordColdStart(counters, m.loadSeconds);
        return [m, { counters, scheduler: new ModelScheduler(m, observeRun, opts.log) }];
      }),
    );
    repository = loaded;
  } catch (err) {
    await close();
    throw err;
  }
  return { url, close };
}

/**
 * How this process serves the model (like Triton's model config endpoint): the session options it was
 * loaded with and the batching in force (null when off, including when the server switched it off after
 * finding the model not batchable).
 */
function modelConfig(model: LoadedModel, scheduler: ModelScheduler): string {
  return JSON.stringify({
    name: model.name,
    version: model.version,
    sessionOptions: model.sessionOptions,
    batching: scheduler.batchingInForce ?? null,
  });
}

function modelMetadata(repository: ModelRepository, model: LoadedModel): string {
  const describe = (s: LoadedModel['inputs'][number]) => ({
    name: s.name,
    datatype: s.datatype ?? 'UNSUPPORTED',
    shape: s.shape,
  });
  return JSON.stringify({
    name: model.name,
    versions: repository.versionsOf(model.name),
    platform: 'onnxruntime',
    inputs: model.inputs.map(describe),
    outputs: model.outputs.map(describe),
  });
}

function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        // Answer now; the connection is closed after the response instead of reading the rest.
        req.removeAllListeners('data');
        req.resume();
        reject(new RequestTooLargeError(`request body is larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size > maxBytes) return;
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    });
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(`malformed JSON in request body: ${(err as Error).message}`);
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
