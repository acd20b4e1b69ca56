/**
 * The one place Ferry reads its environment. Every setting has a documented default that matches
 * the dev stack started by `infra/stack.sh`, so nothing needs configuring on a fresh clone.
 */
import * as os from 'node:os';
import * as path from 'node:path';

const repoRoot = path.resolve(__dirname, '..');

function num(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got "${raw}"`);
  return value;
}

function str(name: string, fallback: string): string {
  const raw = process.env[name];
  return raw === undefined || raw === '' ? fallback : raw;
}

function optional(name: string): string | undefined {
  const raw = process.env[name];
  return raw === undefined || raw === '' ? undefined : raw;
}

export interface FerryConfig {
  repoRoot: string;
  /** Runtime state of the dev stack and Ferry's own processes (git-ignored, inside the clone). */
  stateDir: string;
  /** Downloaded server binaries and other caches reused across clones (outside the clone). */
  cacheDir: string;
  temporal: { address: string; namespace: string; uiUrl: string; taskQueue: string };
  postgres: { url: string };
  s3: { endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string };
  registry: { url: string };
  gateway: { host: string; port: number; url: string };
  /**
   * Bind addresses default to loopback; containers set FERRY_GATEWAY_HOST / FERRY_API_HOST to 0.0.0.0.
   * `key`: the API key clients send as a Bearer token (FERRY_API_KEY; none by default).
   */
  api: { host: string; port: number; url: string; key: string | undefined };
  /** Defaults of a new deployment's run, when the caller does not choose. */
  deploy: {
    /** How long a `--review` deployment waits for an approval before taking the default plan. */
    approvalTimeoutMs: number;
    /** How often the monitor workflow collects metrics. */
    monitorIntervalMs: number;
    /** How long a deployment may serve no request before the monitor hibernates it. */
    idleHibernateMs: number;
  };
  /** Who runs the CLI (USER): recorded as the approver when `ferry approve` is not given `--by`. */
  userName: string;
  worker: {
    /** Prometheus metrics of the worker's Temporal runtime on 127.0.0.1; 0 turns them off. */
    metricsPort: number;
  };
  telemetry: {
    /** Spans go to this OTLP collector when set (the standard variable), else to a file in the state dir. */
    otlpEndpoint: string | undefined;
  };
}

export function loadConfig(): FerryConfig {
  const temporalPort = num('FERRY_TEMPORAL_PORT', 7233);
  const temporalUiPort = num('FERRY_TEMPORAL_UI_PORT', 8233);
  const pgPort = num('FERRY_PG_PORT', 5433);
  const s3Port = num('FERRY_S3_PORT', 8333);
  const registryPort = num('FERRY_REGISTRY_PORT', 5000);
  const gatewayPort = num('FERRY_GATEWAY_PORT', 8080);
  const apiPort = num('FERRY_API_PORT', 8090);
  return {
    repoRoot,
    stateDir: path.resolve(str('FERRY_STATE_DIR', path.join(repoRoot, '.ferry'))),
    cacheDir: path.resolve(str('FERRY_CACHE_DIR', path.join(os.homedir(), '.cache', 'ferry'))),
    temporal: {
      address: str('FERRY_TEMPORAL_ADDRESS', `127.0.0.1:${temporalPort}`),
      namespace: str('FERRY_TEMPORAL_NAMESPACE', 'default'),
      uiUrl: str('FERRY_TEMPORAL_UI_URL', `http://127.0.0.1:${temporalUiPort}`),
      taskQueue: str('FERRY_TASK_QUEUE', 'ferry-pipeline'),
    },
    postgres: { url: str('FERRY_DATABASE_URL', `postgres://ferry:ferry@127.0.0.1:${pgPort}/ferry`) },
    s3: {
      endpoint: str('FERRY_S3_ENDPOINT', `http://127.0.0.1:${s3Port}`),
      bucket: str('FERRY_S3_BUCKET', 'ferry'),
      region: str('FERRY_S3_REGION', 'us-east-1'),
      accessKeyId: str('FERRY_S3_ACCESS_KEY', 'ferry'),
      secretAccessKey: str('FERRY_S3_SECRET_KEY', 'ferry-secret'),
    },
    registry: { url: str('FERRY_REGISTRY_URL', `http://127.0.0.1:${registryPort}`) },
    gateway: {
      host: str('FERRY_GATEWAY_HOST', '127.0.0.1'),
      port: gatewayPort,
      url: str('FERRY_GATEWAY_URL', `http://127.0.0.1:${gatewayPort}`),
    },
    api: {
      host: str('FERRY_API_HOST', '127.0.0.1'),
      port: apiPort,
      url: str('FERRY_API_URL', `http://127.0.0.1:${apiPort}`),
      key: optional('FERRY_API_KEY'),
    },
    deploy: {
      approvalTimeoutMs: num('FERRY_APPROVAL_TIMEOUT_MS', 60 * 60_000),
      monitorIntervalMs: num('FERRY_MONITOR_INTERVAL_MS', 15_000),
      idleHibernateMs: num('FERRY_IDLE_HIBERNATE_MS', 15 * 60_000),
    },
    userName: str('USER', 'cli'),
    worker: { metricsPort: num('FERRY_WORKER_METRICS_PORT', 9464) },
    telemetry: { otlpEndpoint: optional('OTEL_EXPORTER_OTLP_ENDPOINT') },
  };
}

/*
 * What crosses to child processes, said once here:
 * - Ferry's own processes (the worker, gateway and API that `ferry up` starts; the optimize engine and
 *   its measurement children) get this process's whole environment, so their loadConfig sees the same
 *   settings: ferryChildEnv.
 * - A model's replicas (started by the gateway, possibly from a user's image) get only REPLICA_HOST_ENV
 *   from the host (replicaHostEnv); the rest of their environment is their launch plan's and where to
 *   listen (lib/gateway/replicaProcess.ts). The inference server reads those in runtime/server/settings.ts.
 */

/** This process's environment for a child that is one of Ferry's own processes, with `overrides` on top. */
export function ferryChildEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...overrides };
}

/** Host variables a replica may need: where things are, the locale, and the standard OpenTelemetry ones. */
export const REPLICA_HOST_ENV = [
  'PATH',
  'HOME',
  'TMPDIR',
  'LANG',
  'TZ',
  'NODE_OPTIONS',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_TRACES_EXPORTER',
  'OTEL_METRICS_EXPORTER',
  'OTEL_LOGS_EXPORTER',
] as const;

/** The REPLICA_HOST_ENV variables this process has. */
export function replicaHostEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of REPLICA_HOST_ENV) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/**
 * The AWS SDK prints a notice about its future Node requirement unless this variable says not to (it has
 * no option for it). Ferry targets Node 20 with a pinned SDK, so the notice is noise: say so once.
 */
export function silenceAwsSdkNodeVersionNotice(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}
