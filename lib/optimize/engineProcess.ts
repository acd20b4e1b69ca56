/**
 * Runs the optimization engine in a child process (engineChild.ts) and returns its result: for callers
 * whose event loop must stay responsive while candidates are built and measured (the Temporal worker).
 * Same options as runOptimizationEngine, except that the model is a file and techniques come from the
 * registry (lib/optimize/techniques); progress arrives through `onProgress`.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ferryChildEnv } from '../config';
import { stderrTail, waitForChild } from '../process/childRun';
import type { EngineOptions, EngineProgress, EngineResult } from './engine';
import {
  OPTIMIZATION_NOT_POSSIBLE_CODES,
  type OptimizationNotPossibleCode,
  OptimizationNotPossibleError,
} from './errors';
import type { CalibrationSample } from './technique';

export type EngineChildOptions = Omit<EngineOptions, 'model' | 'registry' | 'onProgress'>;

export interface EngineRequestWire extends Omit<EngineChildOptions, 'calibration'> {
  modelPath: string;
  calibration?: Array<Record<string, { dims: number[]; data: number[] }>>;
}

/** What engineChild.ts writes: the result, or the error (with its code when it is an OptimizationNotPossibleError). */
export type EngineResultWire =
  | { ok: true; result: EngineResult }
  | { ok: false; error: string; code?: OptimizationNotPossibleCode };

export function engineOptionsFromWire(req: EngineRequestWire, model: Uint8Array): Omit<EngineOptions, 'onProgress'> {
  const { modelPath: _m, calibration, ...rest } = req;
  return {
    ...rest,
    model,
    calibration: calibration?.map((sample) => {
      const out: CalibrationSample = {};
      for (const [name, t] of Object.entries(sample)) out[name] = { dims: t.dims, data: Float32Array.from(t.data) };
      return out;
    }),
  };
}

const repoRoot = path.resolve(__dirname, '../..');
const CHILD = path.join(__dirname, 'engineChild.ts');

export async function runOptimizationEngineInChild(
  modelPath: string,
  opts: EngineChildOptions,
  onProgress?: (p: EngineProgress) => void,
  timeoutMs = 60 * 60_000,
  signal?: AbortSignal,
): Promise<EngineResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-engine-'));
  try {
    const requestPath = path.join(dir, 'request.json');
    const resultPath = path.join(dir, 'result.json');
    const wire: EngineRequestWire = {
      ...opts,
      modelPath: path.resolve(modelPath),
      calibration: opts.calibration?.map((sample) =>
        Object.fromEntries(
          Object.entries(sample).map(([name, t]) => [name, { dims: t.dims, data: Array.from(t.data) }]),
        ),
      ),
    };
    await writeFile(requestPath, JSON.stringify(wire));
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, requestPath, resultPath], {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: ferryChildEnv({ NODE_OPTIONS: '' }),
    });
    child.on('message', (msg: { type?: string; progress?: EngineProgress }) => {
      if (msg?.type === 'progress' && msg.progress) onProgress?.(msg.progress);
    });
    // Cancelled (e.g. the activity was cancelled or timed out): the engine stops, and its measuring child with it.
    const abort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', abort, { once: true });
    const exit = await waitForChild(child, timeoutMs);
    signal?.removeEventListener('abort', abort);
    if (signal?.aborted) throw new Error('the optimization was cancelled');
    let outcome: EngineResultWire;
    try {
      outcome = JSON.parse(await readFile(resultPath, 'utf8'));
    } catch {
      const why = exit.timedOut
        ? `the optimization engine did not finish within ${Math.round(timeoutMs / 60_000)} min`
        : `the optimization engine process died (${exit.signal ?? `exit ${exit.code}`})`;
      throw new Error(`${why}: ${stderrTail(exit.stderr, 3)}`);
    }
    if (!outcome.ok) {
      if (outcome.code && OPTIMIZATION_NOT_POSSIBLE_CODES.includes(outcome.code))
        throw new OptimizationNotPossibleError(outcome.code, outcome.error);
      throw new Error(outcome.error);
    }
    return outcome.result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
