/**
 * Runs every request file of a batch through one model, the way the inference server would answer it
 * over HTTP (runtime/server's repository, scheduler and codec: inferParsedRequest), and writes one
 * response per request (batchFiles.ts names them).
 *
 * - Resume: requests whose response exists are not run again (planBatch), so a run after a crash does
 *   only the rest. Responses are written whole or not at all (batchLocation.ts).
 * - Failures stay per file: a request that cannot be read, parsed or run gets `errors/<name>.error.json`
 *   (its message and the HTTP status the server would have answered) and the batch goes on. A failed
 *   request is not finished, so the next run tries it again; its error record goes once it succeeds.
 *   Only an output that cannot be written stops the batch (nothing after it could be recorded either).
 * - At most `concurrency` requests are in flight: their reads and writes overlap with the runs, and with
 *   batching on in the model's configuration the scheduler merges their runs as the server does.
 * - `batch-summary.json` is written at the end: totals and this run's failures.
 */
import { performance } from 'node:perf_hooks';
import { httpStatusOf, InvalidInputError } from '../server/errors';
import { inferParsedRequest } from '../server/inferRequest';
import { type LoadedModel, loadModelRepository, type ModelRepository } from '../server/modelRepository';
import { ModelScheduler } from '../server/modelScheduler';
import { parseInferRequest } from '../server/tensorCodec';
import { ERROR_SUFFIX, ERRORS_DIR, errorNameFor, planBatch, responseNameFor, SUMMARY_NAME } from './batchFiles';
import type { BatchLocation } from './batchLocation';

export interface BatchOptions {
  /** Folder with ferry-models.json, as the server's FERRY_MODEL_DIR. */
  modelDir: string;
  input: BatchLocation;
  output: BatchLocation;
  /** Requests in flight at once; default 4. */
  concurrency?: number;
  /** `name` or `name:version`; default the image's only model (its latest version). */
  model?: string;
  /** Called once the plan is known and after each request. */
  onProgress?: (progress: BatchProgress) => void;
  /** Once aborted, no new request starts; those in flight finish and the summary says so. */
  signal?: AbortSignal;
}

export interface BatchProgress {
  /** Request files in the input. */
  total: number;
  /** Answered before this run started (not run again). */
  alreadyDone: number;
  /** Answered in this run. */
  succeeded: number;
  /** Failed in this run. */
  failed: number;
}

export interface BatchFailure {
  request: string;
  /** The status the inference server would have answered with (400 a bad request, 500 the model failed...). */
  status: number;
  error: string;
}

export interface BatchSummary extends BatchProgress {
  model: { name: string; version: string };
  input: string;
  output: string;
  concurrency: number;
  /** True when the run was stopped before every request had been tried. */
  interrupted: boolean;
  startedAt: string;
  finishedAt: string;
  seconds: number;
  failures: BatchFailure[];
}

export const DEFAULT_CONCURRENCY = 4;

/** Thrown when an output cannot be written: the batch stops (what is written stays; a rerun resumes). */
export class BatchOutputError extends Error {}

function chooseModel(repository: ModelRepository, wanted: string | undefined): LoadedModel {
  if (wanted) {
    const colon = wanted.lastIndexOf(':');
    return colon > 0
      ? repository.resolve(wanted.slice(0, colon), wanted.slice(colon + 1))
      : repository.resolve(wanted, undefined);
  }
  const names = [...new Set(repository.models.map((m) => m.name))];
  if (names.length !== 1) {
    throw new Error(`this image serves ${names.length} models (${names.join(', ')}): say which one to run`);
  }
  return repository.resolve(names[0]!, undefined);
}

/** The response's JSON text; throws what the server would answer for a bad request. */
async function answer(model: LoadedModel, scheduler: ModelScheduler, name: string, bytes: Buffer): Promise<string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new InvalidInputError(`malformed JSON: ${(err as Error).message}`);
  }
  // The file's name is the response's id when the request has none, so reruns give the same bytes.
  const { encoded } = await inferParsedRequest(model, scheduler, parseInferRequest(parsed), name);
  if (encoded.binary.length > 0) {
    throw new InvalidInputError(
      'binary outputs (binary_data_output / binary_data) cannot be written to a .response.json file: leave them out',
    );
  }
  return encoded.json;
}

export async function runBatch(opts: BatchOptions): Promise<BatchSummary> {
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be ≥ 1, got ${concurrency}`);
  const startedAt = new Date();
  const started = performance.now();
  const repository = await loadModelRepository(opts.modelDir);
  try {
    const model = chooseModel(repository, opts.model);
    const scheduler = new ModelScheduler(model, () => {});

    await opts.output.cleanUp();
    const [inputNames, outputNames] = await Promise.all([opts.input.list(), opts.output.list()]);
    const plan = planBatch(inputNames, outputNames);
    const erroredBefore = new Set(
      outputNames
        .filter((n) => n.startsWith(`${ERRORS_DIR}/`) && n.endsWith(ERROR_SUFFIX))
        .map((n) => n.slice(ERRORS_DIR.length + 1, -ERROR_SUFFIX.length)),
    );

    const progress: BatchProgress = {
      total: plan.requests.length,
      alreadyDone: plan.done.length,
      succeeded: 0,
      failed: 0,
    };
    const failures: BatchFailure[] = [];
    opts.onProgress?.({ ...progress });

    let next = 0;
    let fatal: Error | undefined;
    const runOne = async (name: string): Promise<void> => {
      let response: string | undefined;
      let failure: BatchFailure | undefined;
      try {
        response = await answer(model, scheduler, name, await opts.input.read(name));
      } catch (err) {
        failure = { request: name, status: httpStatusOf(err), error: (err as Error).message ?? String(err) };
      }
      try {
        if (response !== undefined) {
          await opts.output.write(responseNameFor(name), response);
          if (erroredBefore.has(name)) await opts.output.remove(errorNameFor(name));
          progress.succeeded++;
        } else {
          await opts.output.write(
            errorNameFor(name),
            `${JSON.stringify({ ...failure, at: new Date().toISOString() }, null, 2)}\n`,
          );
          failures.push(failure!);
          progress.failed++;
        }
      } catch (err) {
        throw new BatchOutputError(
          `cannot write the output of ${name} to ${opts.output.describe}: ${(err as Error).message}`,
        );
      }
      opts.onProgress?.({ ...progress });
    };
    const worker = async (): Promise<void> => {
      while (!fatal && !opts.signal?.aborted && next < plan.todo.length) {
        const name = plan.todo[next++]!;
        await runOne(name).catch((err: Error) => {
          fatal ??= err;
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, plan.todo.length) }, worker));
    if (fatal) throw fatal;

    const summary: BatchSummary = {
      model: { name: model.name, version: model.version },
      input: opts.input.describe,
      output: opts.output.describe,
      concurrency,
      ...progress,
      interrupted: progress.alreadyDone + progress.succeeded + progress.failed < progress.total,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
      failures: failures.sort((a, b) => (a.request < b.request ? -1 : 1)),
    };
    await opts.output.write(SUMMARY_NAME, `${JSON.stringify(summary, null, 2)}\n`);
    return summary;
  } finally {
    await repository.release();
  }
}
