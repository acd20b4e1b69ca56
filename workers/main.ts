/**
 * The pipeline worker: runs Ferry's workflows and every stage's activities on one task queue,
 * with OpenTelemetry spans for workflows and activities and Prometheus metrics from Temporal's core.
 *   npx tsx workers/main.ts          (settings: lib/config.ts; the metrics port is FERRY_WORKER_METRICS_PORT)
 */
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import * as activities from '../activities';
import { loadConfig } from '../lib/config';
import { closePools } from '../lib/db/pool';
import { startTelemetry } from '../lib/telemetry/tracing';
import { temporalConnectionOptions } from '../lib/temporalConnection';

async function main(): Promise<void> {
  const config = loadConfig();
  const { metricsPort } = config.worker;
  Runtime.install({
    telemetryOptions: metricsPort > 0 ? { metrics: { prometheus: { bindAddress: `127.0.0.1:${metricsPort}` } } } : {},
  });
  const telemetry = await startTelemetry('ferry-worker', config);

  const connection = await NativeConnection.connect(temporalConnectionOptions(config.temporal)).catch((err: Error) => {
    throw new Error(
      `Temporal at ${config.temporal.address} is not reachable (${err.message}); start the dev stack with: bash infra/stack.sh start`,
    );
  });
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowsPath: require.resolve('../workflows'),
    activities,
    plugins: [new OpenTelemetryPlugin({ resource: telemetry.resource, spanProcessor: telemetry.spanProcessor })],
    maxConcurrentActivityTaskExecutions: 4,
    // A crashed worker's cached workflows move to another worker after this, instead of the 10 s default.
    stickyQueueScheduleToStartTimeout: '3s',
  });
  console.log(
    `ferry worker: task queue ${config.temporal.taskQueue} on ${config.temporal.address} (pid ${process.pid})`,
  );
  try {
    await worker.run();
  } finally {
    await connection.close();
    await closePools();
    await telemetry.shutdown();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
