/**
 * Measuring candidates: each model written to the work dir and measured in a child process of its own
 * (measure.ts) on the run's inputs, the original first, one at a time.
 */
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { EngineInputs } from './engineInputs';
import { type ChildMeasurement, measureInChild } from './measure';
import type { MeasureRequest } from './measureProtocol';
import { feedsToWire } from './sampleInputs';
import type { ServingSessionOptions } from './types';

export interface MeasureSettings {
  /** Timed milliseconds per candidate and batch size. */
  measureMs: number;
  /** Per candidate child process. */
  timeoutMs: number;
  /** Measurements per candidate (a process each); the least disturbed one is kept. */
  rounds: number;
}

export interface CandidateMeasured extends ChildMeasurement {
  /** Where the candidate's model was written (`<workDir>/<id>.onnx`). */
  modelPath: string;
}

export class CandidateMeter {
  private readonly wire: Pick<MeasureRequest, 'agreement' | 'batch1' | 'largeBatch'>;

  constructor(
    private readonly dirs: { workDir: string; scratch: string },
    inputs: EngineInputs,
    readonly settings: MeasureSettings,
  ) {
    this.wire = {
      agreement: inputs.agreement.map(feedsToWire),
      batch1: feedsToWire(inputs.batch1),
      largeBatch: inputs.largeBatch
        ? { batchSize: inputs.largeBatchSize, feeds: feedsToWire(inputs.largeBatch) }
        : undefined,
    };
  }

  /** From now on, measure batch 1 only (the original does not run the larger batch). */
  dropLargeBatch(): void {
    this.wire.largeBatch = undefined;
  }

  async measure(id: string, model: Uint8Array, sessionOptions: ServingSessionOptions): Promise<CandidateMeasured> {
    const { workDir, scratch } = this.dirs;
    const { measureMs, timeoutMs, rounds } = this.settings;
    const modelPath = path.join(workDir, `${id}.onnx`);
    await writeFile(modelPath, model);
    const req: MeasureRequest = {
      modelPath,
      sessionOptions,
      agreement: this.wire.agreement,
      outputsPath: path.join(scratch, `${id}.outputs.json`),
      batch1: this.wire.batch1,
      largeBatch: this.wire.largeBatch,
      warmup: 5,
      minIterations: 20,
      maxIterations: 5000,
      measureMs,
    };
    const files = {
      requestPath: path.join(scratch, `${id}.request.json`),
      responsePath: path.join(scratch, `${id}.response.json`),
    };
    let m = await measureInChild(req, files, timeoutMs);
    // More rounds: keep the round with the lowest batch-1 p50 (the least disturbed by other work on the machine).
    for (let round = 1; round < rounds && m.response.ok; round++) {
      const again = await measureInChild(req, files, timeoutMs);
      if (again.response.ok && m.response.ok && again.response.batch1.p50Ms < m.response.batch1.p50Ms)
        m = { ...again, outputs: m.outputs };
    }
    return { ...m, modelPath };
  }
}
