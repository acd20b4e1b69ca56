/**
 * The deploy pipeline's activities as the workflow sees them: functions that answer with plausible results
 * and record every call, so a test can check what the workflow asked for and in which order. A test
 * replaces the ones its case is about (a failing upload, an approval sent from inside a stage, ...).
 */
import { shippedCatalog } from '../../lib/cost/catalog/load';
import { planEveryCandidate } from '../../lib/cost/deployStage';
import type { LocalMachine, TargetKind } from '../../lib/cost/engine/types';
import { clusterNodeHere } from '../../lib/cost/thisMachine';
import type { SmokeTestRecord } from '../../lib/image/smokeTest';
import type { CandidateMeasurement, ImageRecord, OptimizationTable, PlanOption } from '../../workflows/types';
import type { Activities } from './timeSkipping';

export interface Call {
  activity: keyof Activities;
  input: unknown;
}

export const DEFAULT_PLAN = 'int8-dynamic';

function row(speedupP50: number, sizeRatio: number, cosine: number): CandidateMeasurement {
  const latency = { p50Ms: 2 / speedupP50, p95Ms: 3 / speedupP50, meanMs: 2.2 / speedupP50 };
  return {
    sizeBytes: Math.round(400_000 / sizeRatio),
    gzipBytes: Math.round(360_000 / sizeRatio),
    loadMs: 12,
    batch1: { ...latency, batchSize: 1, iterations: 200, throughputPerSec: 1000 / latency.meanMs },
    peakRssBytes: 90e6,
    modelRssBytes: 4e6,
    agreement: { maxAbsError: 1 - cosine, cosine, top1: 1, samples: 64 },
    cores: 1,
    costPerMillionUsd: 0.02 / speedupP50,
    vsOriginal: { sizeRatio, gzipRatio: sizeRatio, speedupP50, memoryRatio: 1 },
  };
}

/** Three measured candidates (one outside the accuracy budget) and one that did not apply. */
export function measuredTable(): { table: OptimizationTable; plans: PlanOption[]; defaultPlan: string } {
  const budget = { minCosine: 0.99, minTop1: 0.99 };
  const table: OptimizationTable = {
    target: { kind: 'cpu', sameMachine: true, threads: 1 },
    budget,
    analysis: {
      parameterCount: 100_000,
      weightBytes: 400_000,
      macsEstimate: 100_000,
      opMix: { Gemm: 2, Relu: 1 },
      dynamicDims: ['batch'],
      batchDynamic: true,
    },
    recommendations: [],
    candidates: [
      {
        id: 'original',
        title: 'Original',
        techniques: [],
        state: 'measured',
        withinBudget: true,
        notes: [],
        row: row(1, 1, 1),
      },
      {
        id: DEFAULT_PLAN,
        title: 'INT8 dynamic quantization',
        techniques: ['int8-dynamic'],
        state: 'measured',
        withinBudget: true,
        notes: [],
        row: row(1.8, 3.9, 0.999),
      },
      {
        id: 'fp16-weights',
        title: 'FP16 weights',
        techniques: ['fp16-weights'],
        state: 'measured',
        withinBudget: false,
        rejection: 'cosine 0.95 < 0.99',
        notes: [],
        row: row(1.1, 2, 0.95),
      },
      {
        id: 'prune',
        title: 'Structured pruning',
        techniques: ['prune'],
        state: 'not-applicable',
        withinBudget: false,
        reason: 'no Conv or Gemm weights large enough to prune',
        notes: [],
      },
    ],
    best: DEFAULT_PLAN,
    method: 'test data',
    score: 'test data',
    elapsedMs: 1500,
  };
  const plans: PlanOption[] = table.candidates
    .filter((c) => c.state === 'measured')
    .map((c) => ({
      id: c.id,
      title: c.title,
      description: c.title,
      expectedEffect: '',
      techniques: c.techniques,
      row: c.row,
      withinBudget: c.withinBudget,
      rejection: c.rejection,
    }));
  return { table, plans, defaultPlan: DEFAULT_PLAN };
}

export const IMAGE: ImageRecord = {
  registry: 'http://127.0.0.1:5000',
  repository: 'ferry/mlp',
  tag: 'v1',
  digest: `sha256:${'ab'.repeat(32)}`,
  sizeBytes: 1_000_000,
};

export const SMOKE_TEST: SmokeTestRecord = {
  runtime: 'youki',
  runtimeVersion: 'youki version 0.7.0',
  platform: 'linux/amd64',
  platformDigest: `sha256:${'cd'.repeat(32)}`,
  model: 'mlp',
  request: { seed: 1, inputs: { x: [4, 16] } },
  agreement: { cosine: 1, maxAbsError: 0, top1: 1, samples: 4, outputs: ['y'] },
  timings: { unpackMs: 300, readyMs: 120, inferMs: 2, totalMs: 500 },
};

/** Where the planning stand-in deploys: a 2-vCPU machine whose cost is not set, and a cluster. */
export const PLANNED_HERE: { local: LocalMachine; deployable: TargetKind[] } = {
  local: { vcpus: 2, memoryGiB: 8, arch: 'x86_64', usdPerHour: 0, costNotSet: true },
  deployable: ['local', 'kubernetes'],
};

/** Every pipeline activity, answering as a successful run would; `overrides` replace single ones. */
export function pipelineActivities(calls: Call[], overrides: Partial<Activities> = {}): Partial<Activities> {
  const record = <K extends keyof Activities>(activity: K, fn: Activities[K]): Activities[K] =>
    (async (input: never) => {
      calls.push({ activity, input });
      return (fn as (i: never) => unknown)(input);
    }) as Activities[K];
  const answers: Partial<Activities> = {
    ingestModel: async () => ({
      modelVersionId: 7,
      sha256: `${'c0ffee'.repeat(10)}c0ff`,
      objectKey: 'models/mlp/v1/model.onnx',
      sizeBytes: 400_000,
      summary: {
        parameterCount: 100_000,
        weightBytes: 400_000,
        nodeCount: 3,
        opHistogram: { Gemm: 2, Relu: 1 },
        inputs: [{ name: 'x', dataType: 'float32', shape: ['batch', 16] }],
        outputs: [{ name: 'y', dataType: 'float32', shape: ['batch', 4] }],
        opsets: [{ domain: '', version: 17 }],
        dynamicDims: ['batch'],
      },
    }),
    measureOptimizationCandidates: async () => measuredTable(),
    recordOptimizationChoice: async (input) => ({
      model: { objectKey: `models/mlp/v1/${input.plan}.onnx`, sha256: 'ee'.repeat(32) },
      benchmark: {
        plan: input.plan,
        iterations: 200,
        batchSize: 1,
        original: { sizeBytes: 400_000, latency: { p50Ms: 2, p95Ms: 3, meanMs: 2.2 } },
        candidate: { sizeBytes: 100_000, latency: { p50Ms: 1, p95Ms: 1.5, meanMs: 1.1 } },
        maxAbsDiff: 0.001,
        speedup: 2,
        sizeRatio: 4,
      },
    }),
    // The cost engine itself (pure) on the shipped catalog, as if this machine and a cluster were configured.
    planDeploymentOptions: async (input) => {
      const catalog = shippedCatalog();
      const planned = planEveryCandidate({
        candidates: input.candidates,
        ...(input.cost ? { request: input.cost } : {}),
        ...(input.target ? { requestedTarget: input.target.kind } : {}),
        catalog,
        ...PLANNED_HERE,
        kubernetesNode: clusterNodeHere(catalog, PLANNED_HERE.deployable),
      });
      return { tables: Object.fromEntries(Object.entries(planned).map(([id, p]) => [id, p.table])) };
    },
    recordDeploymentDecision: async () => undefined,
    buildAndPushModelImage: async () => ({
      imageId: 3,
      image: IMAGE,
      pushedBytes: IMAGE.sizeBytes,
      smokeTest: SMOKE_TEST,
    }),
    deployToLocalTarget: async (input) => ({
      endpoint: `http://127.0.0.1:8080/d/${input.deploymentId}`,
      inferUrl: `http://127.0.0.1:8080/d/${input.deploymentId}/v2/models/${input.model}/infer`,
      replicas: input.replicas,
    }),
    // The monitor child the pipeline starts: a quiet deployment that is never idle long enough to hibernate.
    collectDeploymentMetrics: async (input) => ({
      at: new Date().toISOString(),
      servingState: 'running',
      replicas: 1,
      requestCount: 0,
      requestsDelta: 0,
      errorCount: 0,
      latencyP50Ms: null,
      latencyP95Ms: null,
      idleMs: 0,
      latencyBuckets: input.previousBuckets ?? [],
    }),
    // Cost accounting with nothing to price yet and no signal scored.
    accountInterval: async (input) => ({
      interval: {
        from: Date.parse(input.current.at),
        to: Date.parse(input.current.at),
        replicaSeconds: 0,
        byRevision: {},
        allocatedUsd: 0,
        idleUsd: 0,
        requests: 0,
        errors: 0,
        busySeconds: 0,
        coldStarts: 0,
        coldStartMs: null,
        per1kUsd: null,
        latencyP95Ms: null,
        pricing: {
          price: { usdPerHour: 0, vcpus: 1, memoryGiB: 1, source: 'test' },
          request: { cpus: 1, memoryGiB: 1 },
        },
      },
      summary: null,
      scores: {},
    }),
    recordAnomalyTransition: async () => undefined,
    sendAnomalyAlert: async () => false,
    hibernateDeployment: async () => 'hibernated' as const,
    destroyDeployment: async () => undefined,
    // Predictive scaling with nothing forecast: no floor above the configured minimum.
    applyPredictiveFloor: async (input) => ({
      at: new Date().toISOString(),
      mode: input.mode,
      floor: 0,
      applied: input.mode === 'on',
      woke: false,
      forecastPeakPerMinute: 0,
      expectedRequests: 0,
      leadMinutes: 2,
      reason: 'no rise above the configured minimum forecast within 2 min',
    }),
    ...overrides,
  };
  const recorded: Partial<Activities> = {};
  for (const [name, fn] of Object.entries(answers) as [keyof Activities, Activities[keyof Activities]][]) {
    (recorded as Record<string, unknown>)[name] = record(name, fn);
  }
  return recorded;
}

/** The inputs the workflow gave one activity, in call order. */
export function inputsOf<K extends keyof Activities>(calls: Call[], activity: K): Parameters<Activities[K]>[0][] {
  return calls.filter((c) => c.activity === activity).map((c) => c.input as Parameters<Activities[K]>[0]);
}
