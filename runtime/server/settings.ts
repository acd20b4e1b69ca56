/**
 * The inference server's settings: the one place the server reads its environment. The server runs
 * inside model images, bundled without lib/, so it has this small module instead of lib/config.ts.
 *
 *   FERRY_MODEL_DIR         directory holding ferry-models.json (required)
 *   PORT                    port to listen on (default 8000)
 *   HOST                    address to bind (default 127.0.0.1)
 *   FERRY_SOCKET            listen on this Unix domain socket instead of HOST:PORT (how the gateway runs replicas)
 *   FERRY_DRAIN_TIMEOUT_MS  how long SIGTERM waits for in-flight requests (default 30000)
 *   FERRY_MAX_BATCH         most rows per request along a dynamic first dimension (default 4096)
 *   OTEL_TRACES_EXPORTER, OTEL_LOGS_EXPORTER, OTEL_METRICS_EXPORTER  the OpenTelemetry SDK's own (see below)
 */

import { DEFAULT_MAX_BATCH } from './requestLimits';

export interface ServerSettings {
  modelDir: string;
  port: number;
  host: string;
  socketPath: string | undefined;
  drainTimeoutMs: number;
  maxBatch: number;
}

export function readServerSettings(): ServerSettings {
  const modelDir = process.env.FERRY_MODEL_DIR;
  if (!modelDir) throw new Error('FERRY_MODEL_DIR is not set: point it at a directory with ferry-models.json');
  const port = Number(process.env.PORT ?? 8000);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT must be a port number, got "${process.env.PORT}"`);
  const drainTimeoutMs = Number(process.env.FERRY_DRAIN_TIMEOUT_MS ?? 30_000);
  if (!Number.isFinite(drainTimeoutMs) || drainTimeoutMs < 0)
    throw new Error(
      `FERRY_DRAIN_TIMEOUT_MS must be a number of milliseconds, got "${process.env.FERRY_DRAIN_TIMEOUT_MS}"`,
    );
  const maxBatch = Number(process.env.FERRY_MAX_BATCH ?? DEFAULT_MAX_BATCH);
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 1)
    throw new Error(`FERRY_MAX_BATCH must be a whole number of rows ≥ 1, got "${process.env.FERRY_MAX_BATCH}"`);
  return {
    modelDir,
    port,
    host: process.env.HOST || '127.0.0.1',
    // Keep this read spelled `process.env.FERRY_SOCKET`: the gateway looks for that text in a server bundle
    // to know its replicas may listen on a socket (lib/gateway/launchPlan.ts), images built earlier included.
    socketPath: process.env.FERRY_SOCKET || undefined,
    drainTimeoutMs,
    maxBatch,
  };
}

/*
 * The OpenTelemetry Node SDK takes its exporter choices only from the standard OTEL_*_EXPORTER variables,
 * so the server states its own choices by setting them (telemetry.ts uses these).
 */

const EXPORTER_VARS = ['OTEL_TRACES_EXPORTER', 'OTEL_LOGS_EXPORTER', 'OTEL_METRICS_EXPORTER'] as const;

/** The SDK defaults each exporter to OTLP, which would retry against a collector that is not there: off unless set. */
export function defaultOtelExportersToNone(): void {
  for (const name of EXPORTER_VARS) process.env[name] ??= 'none';
}

/** Whether trace or log export is asked for (the Node SDK is needed only then). */
export function otelTracesOrLogsWanted(): boolean {
  const wanted = (name: string) =>
    (process.env[name] ?? 'none').split(',').some((v) => v.trim() !== '' && v.trim() !== 'none');
  return wanted('OTEL_TRACES_EXPORTER') || wanted('OTEL_LOGS_EXPORTER');
}

/** Runs `fn` (the SDK's construction) with OTEL_METRICS_EXPORTER=none, then puts the variable back as it was. */
export function withOtelMetricsExporterOff<T>(fn: () => T): T {
  const metricsExporter = process.env.OTEL_METRICS_EXPORTER;
  process.env.OTEL_METRICS_EXPORTER = 'none';
  try {
    return fn();
  } finally {
    if (metricsExporter === undefined) delete process.env.OTEL_METRICS_EXPORTER;
    else process.env.OTEL_METRICS_EXPORTER = metricsExporter;
  }
}
