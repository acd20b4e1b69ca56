/**
 * Entrypoint of the inference server inside a Ferry image (bundled to /app/server.js).
 *   FERRY_MODEL_DIR  directory holding ferry-models.json (required)
 *   PORT             port to listen on (default 8000)
 *   HOST             address to bind (default 127.0.0.1)
 *   FERRY_SOCKET     listen on this Unix domain socket instead of HOST:PORT (how the gateway runs replicas)
 *   FERRY_DRAIN_TIMEOUT_MS  how long SIGTERM waits for in-flight requests (default 30000)
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests, exit 0. A second signal exits at once.
 */
import { startServerTelemetry } from './telemetry';
import { startInferenceServer, type InferenceServer } from './inferenceServer';

function log(message: string): void {
  process.stdout.write(`${new Date().toISOString()} ${message}\n`);
}

async function main(): Promise<void> {
  const telemetry = startServerTelemetry();

  const modelDir = process.env.FERRY_MODEL_DIR;
  if (!modelDir) throw new Error('FERRY_MODEL_DIR is not set: point it at a directory with ferry-models.json');
  const port = Number(process.env.PORT ?? 8000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got "${process.env.PORT}"`);
  const host = process.env.HOST || '127.0.0.1';
  const socketPath = process.env.FERRY_SOCKET || undefined;
  const drainTimeoutMs = Number(process.env.FERRY_DRAIN_TIMEOUT_MS ?? 30_000);

  let server: InferenceServer | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    log(`${signal}: draining in-flight requests`);
    (server ? server.close() : telemetry.shutdown?.() ?? Promise.resolve()).then(
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

  const started = Date.now();
  server = await startInferenceServer({ modelDir, port, host, socketPath, telemetry, drainTimeoutMs });
  log(`ferry inference server ready at ${server.url} (models from ${modelDir}, loaded in ${Date.now() - started} ms)`);
  if (stopping) await server.close();
}

main().catch((err: Error) => {
  log(`fatal: ${err.message}`);
  process.exit(1);
});
