/**
 * The one place Ferry reads its environment. Every setting has a documented default; the dev stack's
 * (ports, credentials, database, bucket, folders) are in infra/defaults.env, which infra/stack.sh reads
 * too, so nothing needs configuring on a fresh clone and the two never disagree.
 *
 * Exceptions, each a process entrypoint that hands settings on or a bundle that cannot load this file:
 * runtime/server/settings.ts and runtime/batch/settings.ts (the inference and batch servers inside images,
 * bundled without lib/), runtime/agent/main.ts (the replica agent on a VM), and the gateway's standby launcher
 * (lib/gateway/replicaLauncher.ts, builtin-only), which takes its replica's environment. A test
 * (test/codebase/conventions.test.ts) holds the tree to this.
 */
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_GATEWAY_SERVER_LIMITS, type GatewayServerLimits } from './gateway/serverLimits';
import { kubeconfigPath } from './targets/kubernetes/kubeconfig';

const repoRoot = path.resolve(__dirname, '..');

/** The dev stack's defaults: `NAME=value` lines (see the file's header). */
export const STACK_DEFAULTS_FILE = path.join(repoRoot, 'infra', 'defaults.env');

const DEFAULT_LINE = /^([A-Z][A-Z0-9_]*)=(.*)$/;

/** Parses defaults.env: NAME=value lines, blank lines and # comments; values are taken as written. */
export function parseStackDefaults(text: string, file = STACK_DEFAULTS_FILE): Record<string, string> {
  const defaults: Record<string, string> = {};
  // The same rules as infra/stack.sh's reader: whole lines, nothing trimmed from a value.
  text.split('\n').forEach((line, i) => {
    if (/^\s*(#|$)/.test(line)) return;
    const m = DEFAULT_LINE.exec(line);
    if (!m) throw new Error(`${file}:${i + 1}: expected NAME=value, got "${line}"`);
    defaults[m[1]] = m[2];
  });
  return defaults;
}

let stackDefaults: Record<string, string> | undefined;

/** The stack defaults, read once per process. */
export function readStackDefaults(): Record<string, string> {
  stackDefaults ??= parseStackDefaults(readFileSync(STACK_DEFAULTS_FILE, 'utf8'));
  return stackDefaults;
}

function stackDefault(name: string): string {
  const value = readStackDefaults()[name];
  if (value === undefined) throw new Error(`${STACK_DEFAULTS_FILE} has no default for ${name}`);
  return value;
}

function optional(name: string): string | undefined {
  const raw = process.env[name];
  return raw === undefined || raw === '' ? undefined : raw;
}

/** A setting from the environment, else `fallback` (by default the stack's default for it). */
function str(name: string, fallback: string = stackDefault(name)): string {
  return optional(name) ?? fallback;
}

/** A comma-separated setting, or undefined when not set. */
function list(name: string): string[] | undefined {
  const items = optional(name)
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return items?.length ? items : undefined;
}

function num(name: string, fallback?: number): number {
  const raw = optional(name) ?? (fallback === undefined ? stackDefault(name) : String(fallback));
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got "${raw}"`);
  return value;
}

/** An on/off switch; anything else is refused rather than guessed. */
function onOff(name: string, fallback: boolean): boolean {
  const raw = optional(name);
  if (raw === undefined) return fallback;
  if (raw !== 'on' && raw !== 'off') throw new Error(`${name} must be on or off, got "${raw}"`);
  return raw === 'on';
}

/** A folder's stack default: relative to the repository root or, with a leading ~/, to the home folder. */
function defaultDir(name: string): string {
  const fallback = stackDefault(name);
  if (fallback.startsWith('~/')) return path.join(os.homedir(), fallback.slice(2));
  return path.resolve(repoRoot, fallback);
}

/** A folder: from the environment as given (relative to the working directory), else the stack default. */
function dir(name: string): string {
  const raw = optional(name);
  return raw === undefined ? defaultDir(name) : path.resolve(raw);
}

/**
 * The dev stack's own credentials (FERRY_PG_PASSWORD, FERRY_S3_ACCESS_KEY, FERRY_S3_SECRET_KEY,
 * FERRY_REGISTRY_USER, FERRY_REGISTRY_PASSWORD): made per install by infra/stack.sh on its first start, in this file of its
 * state dir (mode 0600, defaults.env's format). A variable set in the environment wins over a line.
 */
export const STACK_CREDENTIALS_FILE = 'stack-credentials.env';

/**
 * The stack credentials in `stateDir`, else in the default state dir: a Ferry process with a state dir of
 * its own (a test's, a second `ferry up`) still reaches this clone's dev stack. Empty when there are none
 * (the stack was never started); read on every loadConfig, so a process sees a stack started after it.
 */
export function readStackCredentials(stateDir: string): Record<string, string> {
  for (const folder of new Set([stateDir, defaultDir('FERRY_STATE_DIR')])) {
    const file = path.join(folder, STACK_CREDENTIALS_FILE);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw new Error(`cannot read the dev stack's credentials in ${file}: ${(err as Error).message}`);
    }
    return parseStackDefaults(text, file);
  }
  return {};
}

/**
 * The Postgres role's password: the per-install one; for a stack first started before it was one (its
 * credentials file has no FERRY_PG_PASSWORD line yet), the one such stacks were made with until the next
 * `stack.sh start` makes and sets one; empty when the stack was never started. infra/stack.sh does the same.
 */
function postgresPassword(given: string | undefined, stackCredentials: Record<string, string>): string {
  if (given !== undefined) return given;
  return Object.keys(stackCredentials).length ? stackDefault('FERRY_PG_LEGACY_PASSWORD') : '';
}

/**
 * FERRY_REGISTRY_USER and FERRY_REGISTRY_PASSWORD as set in the environment (not the stack's file): what
 * `ferry image` sends to a registry the command names, when no flag gives credentials.
 */
export function registryCredentialVariables(env: NodeJS.ProcessEnv = process.env): {
  username?: string;
  password?: string;
} {
  return { username: env.FERRY_REGISTRY_USER || undefined, password: env.FERRY_REGISTRY_PASSWORD || undefined };
}

function registryCredentials(username: string | undefined, password: string | undefined) {
  if (username === undefined && password === undefined) return {};
  if (username === undefined || password === undefined) {
    throw new Error('FERRY_REGISTRY_USER and FERRY_REGISTRY_PASSWORD go together: set both or neither');
  }
  return { credentials: { username, password } };
}

/**
 * TLS to Temporal, for a real cluster (the dev stack's server listens on 127.0.0.1 without it). On when
 * FERRY_TEMPORAL_TLS=on or any of the other FERRY_TEMPORAL_TLS_* variables is set; off by default.
 */
export interface TemporalTlsSettings {
  /** mTLS: PEM files of this client's certificate (FERRY_TEMPORAL_TLS_CERT) and key (_KEY), both or neither. */
  clientCertFile?: string;
  clientKeyFile?: string;
  /** PEM file of the CA that issued the server's certificate (FERRY_TEMPORAL_TLS_CA); default the system's. */
  caFile?: string;
  /** The name the server's certificate is checked against, when not the address's host (_SERVER_NAME). */
  serverName?: string;
}

function temporalTls(): TemporalTlsSettings | undefined {
  const mode = optional('FERRY_TEMPORAL_TLS');
  if (mode !== undefined && mode !== 'on' && mode !== 'off') {
    throw new Error(`FERRY_TEMPORAL_TLS must be on or off, got "${mode}"`);
  }
  const settings: TemporalTlsSettings = {
    clientCertFile: optional('FERRY_TEMPORAL_TLS_CERT'),
    clientKeyFile: optional('FERRY_TEMPORAL_TLS_KEY'),
    caFile: optional('FERRY_TEMPORAL_TLS_CA'),
    serverName: optional('FERRY_TEMPORAL_TLS_SERVER_NAME'),
  };
  const given = Object.values(settings).some((v) => v !== undefined);
  if ((settings.clientCertFile === undefined) !== (settings.clientKeyFile === undefined)) {
    throw new Error('FERRY_TEMPORAL_TLS_CERT and FERRY_TEMPORAL_TLS_KEY go together: set both or neither');
  }
  if (mode === 'off') {
    if (given) throw new Error('FERRY_TEMPORAL_TLS=off, yet FERRY_TEMPORAL_TLS_* settings are given');
    return undefined;
  }
  return mode === 'on' || given ? settings : undefined;
}

function tlsFiles(certFile: string | undefined, keyFile: string | undefined) {
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new Error('FERRY_TLS_CERT and FERRY_TLS_KEY go together: set both or neither');
  return { certFile, keyFile };
}

export interface FerryConfig {
  repoRoot: string;
  /** Runtime state of the dev stack and Ferry's own processes (git-ignored, inside the clone). */
  stateDir: string;
  /** Downloaded server binaries and other caches reused across clones (outside the clone). */
  cacheDir: string;
  temporal: {
    address: string;
    namespace: string;
    uiUrl: string;
    taskQueue: string;
    /** Every connection to Temporal (the CLI's, the API's, the worker's) uses it: lib/temporalConnection.ts. */
    tls: TemporalTlsSettings | undefined;
  };
  postgres: { url: string };
  /** The keys: FERRY_S3_ACCESS_KEY and FERRY_S3_SECRET_KEY, else the stack's (empty when there are none). */
  s3: { endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string };
  /**
   * credentials: FERRY_REGISTRY_USER and FERRY_REGISTRY_PASSWORD, else the stack's; sent to this registry
   * only, when it asks.
   */
  registry: { url: string; credentials?: { username: string; password: string } };
  /**
   * limits: the gateway's connection cap and slow-client timeouts (lib/gateway/serverLimits.ts):
   * FERRY_GATEWAY_MAX_CONNECTIONS (8192), FERRY_GATEWAY_HEADERS_TIMEOUT_MS (20000),
   * FERRY_GATEWAY_REQUEST_TIMEOUT_MS (300000), FERRY_GATEWAY_KEEP_ALIVE_TIMEOUT_MS (5000),
   * FERRY_GATEWAY_IDLE_TIMEOUT_MS (120000).
   */
  gateway: { host: string; port: number; url: string; limits: GatewayServerLimits };
  /**
   * Bind addresses default to loopback; containers set FERRY_GATEWAY_HOST / FERRY_API_HOST to 0.0.0.0.
   * `key`: the API key clients send as a Bearer token (FERRY_API_KEY); unset, clients send the bootstrap
   * admin key in `<stateDir>/admin.key` (lib/auth/clientKey.ts).
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
  /** Live cost and anomaly alerts of the monitor (lib/analytics/). */
  monitoring: {
    /**
     * What the machine the local target runs on costs per hour (FERRY_LOCAL_COST_PER_HOUR, USD). The
     * default is the on-demand list price of a comparable 2 vCPU / 8 GiB instance (m6i.large, us-east-1,
     * $0.096/h), so local figures read as what the same work would cost on a small cloud instance.
     */
    localCostPerHour: number;
    /** Slack-compatible incoming webhook anomalies are posted to (FERRY_ALERT_WEBHOOK_URL); unset: none. */
    alertWebhookUrl: string | undefined;
  };
  /** The cost engine's view of this machine (lib/cost/configuredTargets.ts). */
  cost: {
    /** FERRY_LOCAL_COST_PER_HOUR as the user set it, else undefined: the engine offers `local` only when set. */
    userLocalCostPerHour: number | undefined;
  };
  /** The cluster of the kubernetes target. */
  kubernetes: {
    /** The first file KUBECONFIG names (as kubectl reads it), else the dev stack's `<stateDir>/kubernetes/kubeconfig`. */
    kubeconfig: string;
    /** Where a deployment that names no namespace goes (FERRY_KUBERNETES_NAMESPACE, default "default"). */
    namespace: string;
  };
  /**
   * The AWS account of the ec2 target: the standard AWS_* variables (which the AWS SDK reads too) and
   * FERRY_EC2_*, as set; lib/targets/ec2/awsEnvironment.ts makes sense of them.
   */
  aws: { variables: Record<string, string> };
  /** Who runs the CLI (USER): recorded as the approver when `ferry approve` is not given `--by`. */
  userName: string;
  worker: {
    /** Prometheus metrics of the worker's Temporal runtime on 127.0.0.1; 0 turns them off. */
    metricsPort: number;
  };
  /** Access control of the API, the gateway's control API and inference. */
  access: {
    /**
     * Keys are asked for unless FERRY_AUTH=off (on by default: the first `ferry up` makes the admin key the
     * CLI and Ferry's own processes use). Off is refused unless the surface listens on loopback.
     */
    auth: boolean;
    /** Shared secret of the Slack-style signed chat-ops webhook (FERRY_CHATOPS_SECRET); unset: webhook off. */
    chatopsSecret: string | undefined;
    /** Largest model upload accepted (FERRY_MAX_MODEL_BYTES). */
    maxModelBytes: number;
    /** Per key: FERRY_RATE_LIMIT_PER_SECOND requests per second, bursts of FERRY_RATE_LIMIT_BURST. */
    rateLimit: { perSecond: number; burst: number };
    /** TLS for the API and the gateway when both FERRY_TLS_CERT and FERRY_TLS_KEY (PEM files) are set. */
    tls: { certFile: string; keyFile: string } | undefined;
    /**
     * Registries the gateway pulls images from, and no others (a spec naming another is refused):
     * FERRY_ALLOWED_REGISTRIES, comma-separated base URLs; default the stack's registry (registry.url).
     */
    registries: string[];
  };
  telemetry: {
    /** Spans go to this OTLP collector when set (the standard variable), else to a file in the state dir. */
    otlpEndpoint: string | undefined;
  };
  /** How the local target runs the replicas of an image (a model directory always runs as a plain process). */
  replicas: {
    /**
     * FERRY_CONTAINER_RUNTIME: youki or runc (required: a replica fails to start when it is missing), or
     * process (plain host processes). Unset: youki if installed, else runc, else plain processes, with a
     * warning that says why.
     */
    runtime: ReplicaRuntimeSetting;
    /** Limits of a replica whose deployment spec gives no `resources`: FERRY_REPLICA_CPUS, FERRY_REPLICA_MEMORY_MB. */
    defaultResources: { cpus: number; memoryMb: number };
    /** Where to find a runtime's binary first: FERRY_<NAME>_BIN (FERRY_YOUKI_BIN, FERRY_RUNC_BIN, FERRY_CONMON_BIN). */
    binaries: Record<string, string>;
  };
  /** The folders of PATH, in order: where Ferry looks for the tools it runs (runtimes, conmon). */
  searchPath: string[];
}

export const REPLICA_RUNTIME_SETTINGS = ['auto', 'youki', 'runc', 'process'] as const;
export type ReplicaRuntimeSetting = (typeof REPLICA_RUNTIME_SETTINGS)[number];

function replicaRuntimeSetting(raw: string | undefined): ReplicaRuntimeSetting {
  if (raw === undefined) return 'auto';
  if (!(REPLICA_RUNTIME_SETTINGS as readonly string[]).includes(raw)) {
    throw new Error(`FERRY_CONTAINER_RUNTIME must be one of ${REPLICA_RUNTIME_SETTINGS.join(', ')}, got "${raw}"`);
  }
  return raw as ReplicaRuntimeSetting;
}

/** Variables of the AWS SDK's standard environment, and the ec2 target's own (lib/targets/ec2/network.ts). */
const AWS_VARIABLE = /^(AWS_[A-Z0-9_]+|FERRY_EC2_[A-Z0-9_]+)$/;
const BINARY_VARIABLE = /^FERRY_([A-Z0-9]+)_BIN$/;

function matchingVariables(pattern: RegExp): Array<[string, string]> {
  return Object.entries(process.env).filter((e): e is [string, string] => pattern.test(e[0]) && Boolean(e[1]));
}

function userLocalCostPerHour(): number | undefined {
  if (optional('FERRY_LOCAL_COST_PER_HOUR') === undefined) return undefined;
  const cost = num('FERRY_LOCAL_COST_PER_HOUR');
  if (cost < 0) throw new Error(`FERRY_LOCAL_COST_PER_HOUR must be a cost per hour ≥ 0, got ${cost}`);
  return cost;
}

export function loadConfig(): FerryConfig {
  const stateDir = dir('FERRY_STATE_DIR');
  const stackCredentials = readStackCredentials(stateDir);
  const credential = (name: string): string | undefined => optional(name) ?? stackCredentials[name];
  const temporalPort = num('FERRY_TEMPORAL_PORT');
  const temporalUiPort = num('FERRY_TEMPORAL_UI_PORT');
  const pgPort = num('FERRY_PG_PORT');
  const pgUser = encodeURIComponent(str('FERRY_PG_USER'));
  const pgPassword = encodeURIComponent(postgresPassword(credential('FERRY_PG_PASSWORD'), stackCredentials));
  const pgDatabase = encodeURIComponent(str('FERRY_PG_DATABASE'));
  const s3Port = num('FERRY_S3_PORT');
  const registryPort = num('FERRY_REGISTRY_PORT');
  const gatewayPort = num('FERRY_GATEWAY_PORT');
  const apiPort = num('FERRY_API_PORT');
  const registryUrl = str('FERRY_REGISTRY_URL', `http://127.0.0.1:${registryPort}`);
  return {
    repoRoot,
    stateDir,
    cacheDir: dir('FERRY_CACHE_DIR'),
    temporal: {
      address: str('FERRY_TEMPORAL_ADDRESS', `127.0.0.1:${temporalPort}`),
      namespace: str('FERRY_TEMPORAL_NAMESPACE'),
      uiUrl: str('FERRY_TEMPORAL_UI_URL', `http://127.0.0.1:${temporalUiPort}`),
      taskQueue: str('FERRY_TASK_QUEUE'),
      tls: temporalTls(),
    },
    postgres: {
      url: str('FERRY_DATABASE_URL', `postgres://${pgUser}:${pgPassword}@127.0.0.1:${pgPort}/${pgDatabase}`),
    },
    s3: {
      endpoint: str('FERRY_S3_ENDPOINT', `http://127.0.0.1:${s3Port}`),
      bucket: str('FERRY_S3_BUCKET'),
      region: str('FERRY_S3_REGION'),
      accessKeyId: credential('FERRY_S3_ACCESS_KEY') ?? '',
      secretAccessKey: credential('FERRY_S3_SECRET_KEY') ?? '',
    },
    registry: {
      url: registryUrl,
      ...registryCredentials(credential('FERRY_REGISTRY_USER'), credential('FERRY_REGISTRY_PASSWORD')),
    },
    gateway: {
      host: str('FERRY_GATEWAY_HOST', '127.0.0.1'),
      port: gatewayPort,
      url: str('FERRY_GATEWAY_URL', `http://127.0.0.1:${gatewayPort}`),
      limits: {
        maxConnections: num('FERRY_GATEWAY_MAX_CONNECTIONS', DEFAULT_GATEWAY_SERVER_LIMITS.maxConnections),
        headersTimeoutMs: num('FERRY_GATEWAY_HEADERS_TIMEOUT_MS', DEFAULT_GATEWAY_SERVER_LIMITS.headersTimeoutMs),
        requestTimeoutMs: num('FERRY_GATEWAY_REQUEST_TIMEOUT_MS', DEFAULT_GATEWAY_SERVER_LIMITS.requestTimeoutMs),
        keepAliveTimeoutMs: num(
          'FERRY_GATEWAY_KEEP_ALIVE_TIMEOUT_MS',
          DEFAULT_GATEWAY_SERVER_LIMITS.keepAliveTimeoutMs,
        ),
        idleTimeoutMs: num('FERRY_GATEWAY_IDLE_TIMEOUT_MS', DEFAULT_GATEWAY_SERVER_LIMITS.idleTimeoutMs),
      },
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
    monitoring: {
      localCostPerHour: num('FERRY_LOCAL_COST_PER_HOUR', 0.096),
      alertWebhookUrl: optional('FERRY_ALERT_WEBHOOK_URL'),
    },
    cost: { userLocalCostPerHour: userLocalCostPerHour() },
    kubernetes: {
      kubeconfig: kubeconfigPath(stateDir, optional('KUBECONFIG')),
      namespace: str('FERRY_KUBERNETES_NAMESPACE', 'default'),
    },
    aws: { variables: Object.fromEntries(matchingVariables(AWS_VARIABLE)) },
    userName: str('USER', 'cli'),
    worker: { metricsPort: num('FERRY_WORKER_METRICS_PORT') },
    access: {
      auth: onOff('FERRY_AUTH', true),
      chatopsSecret: optional('FERRY_CHATOPS_SECRET'),
      maxModelBytes: num('FERRY_MAX_MODEL_BYTES', 2 * 1024 ** 3),
      rateLimit: { perSecond: num('FERRY_RATE_LIMIT_PER_SECOND', 50), burst: num('FERRY_RATE_LIMIT_BURST', 100) },
      tls: tlsFiles(optional('FERRY_TLS_CERT'), optional('FERRY_TLS_KEY')),
      registries: list('FERRY_ALLOWED_REGISTRIES') ?? [registryUrl],
    },
    telemetry: { otlpEndpoint: optional('OTEL_EXPORTER_OTLP_ENDPOINT') },
    replicas: {
      runtime: replicaRuntimeSetting(optional('FERRY_CONTAINER_RUNTIME')),
      defaultResources: { cpus: num('FERRY_REPLICA_CPUS', 1), memoryMb: num('FERRY_REPLICA_MEMORY_MB', 1024) },
      binaries: Object.fromEntries(
        matchingVariables(BINARY_VARIABLE).map(([name, file]) => [BINARY_VARIABLE.exec(name)![1].toLowerCase(), file]),
      ),
    },
    searchPath: hostSearchPath().split(':').filter(Boolean),
  };
}

/** PATH, or the usual system folders when it is unset: what a child that runs tools is given. */
export function hostSearchPath(): string {
  return process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
}

/*
 * What crosses to child processes, said once here:
 * - Ferry's own processes (the worker, gateway and API that `ferry up` starts; the optimize engine and
 *   its measurement children) get this process's whole environment, so their loadConfig sees the same
 *   settings: ferryChildEnv.
 * - A model's replicas (started by the gateway, possibly from a user's image) get only REPLICA_HOST_ENV
 *   from the host (replicaHostEnv), or as containers only its OTEL_ variables (containerHostEnv); the rest of their environment is their launch plan's and where to
 *   listen (lib/gateway/replicaProcess.ts). The inference server reads those in runtime/server/settings.ts.
 */

/** This process's environment for a child that is one of Ferry's own processes (or Ferry's own install scripts), with `overrides` on top. */
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

/** What a replica that runs as a container takes from the host: only the OpenTelemetry variables. */
export function containerHostEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(replicaHostEnv()).filter(([name]) => name.startsWith('OTEL_')));
}

/**
 * The AWS SDK prints a notice about its future Node requirement unless this variable says not to (it has
 * no option for it). Ferry targets Node 20 with a pinned SDK, so the notice is noise: say so once.
 */
export function silenceAwsSdkNodeVersionNotice(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}
