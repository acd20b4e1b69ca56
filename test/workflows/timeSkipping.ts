/**
 * Ferry's workflows on Temporal's time-skipping test server, with the activities replaced by functions the
 * test writes: these tests are about the workflows' decisions (deadlines, validation, branches, retries,
 * continue-as-new), not about what the activities do (the pipeline tests run those for real).
 *
 * The test server is installed (once, into the cache) by scripts/install-test-server.sh; nothing here
 * downloads it. Each test file starts one server and bundles the workflow code once.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import type * as activities from '../../activities';
import {
  ferryDeploymentKey,
  ferryModelKey,
  ferryModelVersionKey,
  ferryStageKey,
  ferryTargetKey,
} from '../../workflows/searchAttributes';

export type Activities = typeof activities;

const repoRoot = path.resolve(__dirname, '../..');
/** temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD (@temporalio/proto is not a direct dependency) */
const INDEXED_VALUE_TYPE_KEYWORD = 2;

/** Path of the test server's executable, installing it first if this machine has none. */
export function testServerExecutable(): string {
  const out = execFileSync('bash', [path.join(repoRoot, 'scripts/install-test-server.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return out.trim().split('\n').at(-1)!;
}

let runtimeInstalled = false;
// Bundled once per process: a test file may start several servers.
let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

export interface WorkflowTestBed {
  env: TestWorkflowEnvironment;
  /** Runs `fn` while a worker on a fresh task queue serves Ferry's workflows with these activities. */
  withWorker<T>(acts: Partial<Activities>, fn: (taskQueue: string) => Promise<T>): Promise<T>;
  teardown(): Promise<void>;
}

/**
 * The SDK gives the test server 5 s to come up, and a JVM on a busy 2-core machine sometimes needs
 * longer; a server that missed it is gone (the SDK stops it), so starting again is safe. Any failure is
 * tried again (the SDK's error has no type or code to tell a slow start by): a broken install fails
 * three times quickly, with the last error.
 */
async function startTestServer(executable: string, attempts = 3): Promise<TestWorkflowEnvironment> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await TestWorkflowEnvironment.createTimeSkipping({
        server: { executable: { type: 'existing-path', path: executable } },
      });
    } catch (err) {
      if (attempt >= attempts) throw err;
    }
  }
}

export async function startWorkflowTestBed(): Promise<WorkflowTestBed> {
  if (!runtimeInstalled) {
    // The worker logs every failed activity and run at WARN, and these tests fail them on purpose; the
    // native side warns that the test server is older than it expects (it implements what these tests use).
    Runtime.install({
      logger: new DefaultLogger('ERROR'),
      telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
    });
    runtimeInstalled = true;
  }
  const executable = testServerExecutable();
  bundle ??= bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    logger: new DefaultLogger('WARN'),
  }) as Promise<WorkflowBundleWithSourceMap>;
  const [env, workflowBundle] = await Promise.all([startTestServer(executable), bundle]);
  // The runs set Ferry's search attributes (infra/stack.sh registers them on the dev server); the test
  // server refuses unregistered ones by failing the workflow task, which would retry forever.
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      [ferryModelKey, ferryModelVersionKey, ferryStageKey, ferryDeploymentKey, ferryTargetKey].map((k) => [
        k.name,
        INDEXED_VALUE_TYPE_KEYWORD,
      ]),
    ),
  });
  let queues = 0;
  return {
    env,
    async withWorker(acts, fn) {
      const taskQueue = `workflow-test-${process.pid}-${++queues}`;
      const worker = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle,
        activities: acts,
      });
      return worker.runUntil(fn(taskQueue));
    },
    teardown: () => env.teardown(),
  };
}
