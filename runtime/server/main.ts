/**
 * Entrypoint of the inference server inside a Ferry image (bundled to /app/server.js). Its settings
 * (FERRY_MODEL_DIR, PORT, HOST, FERRY_SOCKET, FERRY_DRAIN_TIMEOUT_MS) are read in settings.ts.
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests, exit 0. A second signal exits at once.
 *
 * Started by the gateway's standby process (lib/gateway/replicaLauncher.ts), this module may be loaded
 * ahead of time — its imports (onnxruntime, OpenTelemetry) evaluated while nobody waits — and `main`
 * called later, when a cold start needs a replica: see STANDBY_ENTRY below.
 */
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { type InferenceServer, startInferenceServer } from './inferenceServer';
import { readServerSettings } from './settings';
import { startServerTelemetry } from './telemetry';

/**
 * Set by the standby launcher before it loads this file in advance: `main` is handed to it instead of
 * being run, and it calls it with the time the replica was asked for. (Also the marker the gateway
 * looks for in a script to know it may be loaded in advance.)
 */
const STANDBY_ENTRY = Symbol.for('ferry.standbyEntry');

/**
 * A one-node ONNX model (Identity on float[1]). onnxruntime's first session in a process also sets up
 * the runtime itself (~25 ms of a 10 MB model's ~50 ms here): a standby process does that with this
 * one in advance, so the replica's real models load faster.
 */
const WARM_UP_MODEL =
  'CAg6PAoQCgF4EgF5IghJZGVudGl0eRIGd2FybXVwWg8KAXgSCgoICAESBAoCCAFiDwoBeRIKCggIARIECgIIAUIECgAQDQ==';

async function warmUpOnnxRuntime(): Promise<void> {
  const session = await ort.InferenceSession.create(Buffer.from(WARM_UP_MODEL, 'base64'));
  await session.release();
}

function log(message: string): void {
  process.stdout.write(`${new Date().toISOString()} ${message}\n`);
}

/**
 * `launchedAt`: performance.now() when this replica was asked for (process start when run directly);
 * `warmedUp`: the standby's onnxruntime warm-up, which must be over before models load.
 */
async function main(launchedAt = 0, warmedUp?: Promise<void>): Promise<void> {
  await warmedUp;
  const telemetry = startServerTelemetry();
  const telemetryAt = performance.now();

  const { modelDir, port, host, socketPath, drainTimeoutMs, maxBatch } = readServerSettings();

  let server: InferenceServer | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    log(`${signal}: draining in-flight requests`);
    (server ? server.close() : telemetry.shutdown()).then(
      () => {
        log('stopped');
        process.exit(0);
      },
      (err: Error) => {
        log(`error while stopping: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const started = performance.now();
  server = await startInferenceServer({ modelDir, port, host, socketPath, telemetry, drainTimeoutMs, maxBatch });
  const readyAt = performance.now();
  log(
    `ferry inference server ready at ${server.url} (models from ${modelDir}, loaded in ${Math.round(readyAt - started)} ms; ` +
      `${Math.round(readyAt - launchedAt)} ms after ${launchedAt ? 'the launch' : 'process start'}: code ${Math.round(telemetryAt - launchedAt)} ms, models ${Math.round(readyAt - started)} ms)`,
  );
  if (stopping) return void (await server.close());
  // Not needed to serve: the Node SDK (trace/log exporters, when configured) starts after the first answers can.
  telemetry.startDeferred().catch((err: Error) => log(`OpenTelemetry SDK not started: ${err.message}`));
}

function run(launchedAt?: number, warmedUp?: Promise<void>): void {
  main(launchedAt, warmedUp).catch((err: Error) => {
    log(`fatal: ${err.message}`);
    process.exit(1);
  });
}

const standby = (globalThis as Record<symbol, unknown>)[STANDBY_ENTRY] as
  | { register(entry: (launchedAt: number) => void): void }
  | undefined;
if (standby) {
  // Loaded ahead of a cold start: set onnxruntime up now, start when the replica is asked for.
  const warmedUp = warmUpOnnxRuntime().catch((err: Error) =>
    log(`onnxruntime warm-up failed (models load as usual): ${err.message}`),
  );
  standby.register((launchedAt) => run(launchedAt, warmedUp));
} else {
  run();
}
