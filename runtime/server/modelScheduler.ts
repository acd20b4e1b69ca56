/**
 * What stands between a decoded request and its model's onnxruntime session.
 *
 * onnxruntime-node runs a session synchronously on the event-loop thread, in a setImmediate callback
 * that session.run schedules: runs in one process happen one at a time whatever we do, and requests
 * that arrive while one computes wait in the socket buffers until it is done.
 *
 * Without batching (the default) a request calls session.run at once, as it would in-process: no queue
 * of ours, no extra event-loop turn. Its queue time (waiting behind other runs) and compute time are
 * still told apart: a marker setImmediate queued just before session.run's own fires right before the
 * run starts.
 *
 * With batching, one session.run per model at a time, FIFO:
 *  - Idle model, empty queue: the request runs at once with its own tensors (no copy, no timer).
 *  - Busy model: requests queue. When the model is free, the oldest request and every queued request
 *    compatible with it (same dimensions after the first for every input, same outputs asked for) are
 *    merged along the first dimension, up to `maxBatchSize` rows, run as one session.run, and each
 *    request gets its own rows of every output back (views, not copies).
 *  - `maxQueueDelayMs` > 0: a free model waits at most that long after the oldest request arrived for
 *    batch mates before running a batch smaller than maxBatchSize (Triton's dynamic batcher rule).
 *  - A merged run that fails is retried request by request, so one bad request (an index out of range,
 *    say) fails alone. A merged run whose outputs do not have the batch as first dimension means the
 *    model is not batchable after all: batching is switched off for it and the requests rerun alone.
 *  - Closing flushes: queued requests run at once, without waiting out their delay.
 */
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import type { BatchingConfig, LoadedModel } from './modelRepository';

/** What the response encoder needs from an output: a real ort.Tensor or a slice of a merged one. */
export interface OutputTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: ort.Tensor['data'];
}

export interface InferOutcome {
  outputs: Record<string, OutputTensor>;
  /** Milliseconds from submit until its session.run started. */
  queueMs: number;
  /** Milliseconds its session.run took (the merged run for a batched request). */
  computeMs: number;
}

/** Called once per session.run that succeeded or failed, with the rows and requests it carried. */
export type RunObserver = (model: LoadedModel, rows: number, requests: number) => void;

interface QueuedRequest {
  feeds: Record<string, ort.Tensor>;
  fetches: string[] | undefined;
  /** Rows along the first dimension, or -1 when the request cannot be merged with others. */
  rows: number;
  /** Requests with the same key can share a run. */
  key: string;
  submittedAt: number;
  resolve(outcome: InferOutcome): void;
  reject(err: Error): void;
}

type TypedArray = Exclude<ort.Tensor['data'], string[]>;

export class ModelScheduler {
  private readonly queue: QueuedRequest[] = [];
  private busy = false;
  /** session.run calls in progress on the unbatched path. */
  private unbatchedRuns = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;
  private idleWaiters: Array<() => void> = [];
  /** Batching settings in force; cleared if the model turns out not to be batchable. */
  private batching: BatchingConfig | undefined;

  constructor(
    readonly model: LoadedModel,
    private readonly observeRun: RunObserver,
    private readonly log: (message: string) => void = () => {},
  ) {
    this.batching = model.batching;
  }

  /** Runs the model on these feeds, alone or merged with other requests. */
  infer(feeds: Record<string, ort.Tensor>, fetches: string[] | undefined): Promise<InferOutcome> {
    if (!this.batching && !this.busy) return this.runNow(feeds, fetches);
    return new Promise<InferOutcome>((resolve, reject) => {
      const request: QueuedRequest = {
        feeds,
        fetches,
        rows: -1,
        key: '',
        submittedAt: performance.now(),
        resolve,
        reject,
      };
      if (this.batching) this.describeForBatching(request);
      this.queue.push(request);
      if (!this.busy) this.dispatch();
    });
  }

  /** The unbatched path: straight to session.run, timing the wait before the run and the run itself. */
  private async runNow(feeds: Record<string, ort.Tensor>, fetches: string[] | undefined): Promise<InferOutcome> {
    const submittedAt = performance.now();
    const mark = { startedAt: submittedAt };
    // Queued before session.run's own setImmediate, so it fires just before the run starts.
    setImmediate(markStart, mark);
    this.unbatchedRuns++;
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      results = fetches ? await this.model.session.run(feeds, fetches) : await this.model.session.run(feeds);
    } finally {
      this.unbatchedRuns--;
      this.observeRun(this.model, firstDimOf(feeds), 1);
      if (this.unbatchedRuns === 0 && this.idleWaiters.length && !this.busy && this.queue.length === 0) this.dispatch();
    }
    const ended = performance.now();
    return { outputs: results, queueMs: mark.startedAt - submittedAt, computeMs: ended - mark.startedAt };
  }

  /** Queued requests run without waiting for batch mates; resolves when nothing is queued or running. */
  flush(): Promise<void> {
    this.flushing = true;
    if (this.timer) this.dispatch();
    if (!this.busy && this.queue.length === 0 && this.unbatchedRuns === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The batching settings in force, undefined when batching is off. */
  get batchingInForce(): BatchingConfig | undefined {
    return this.batching;
  }

  get queuedRequests(): number {
    return this.queue.length;
  }

  private describeForBatching(request: QueuedRequest): void {
    let rows = -1;
    let key = request.fetches ? request.fetches.join('\u0000') : '*';
    for (const signature of this.model.inputs) {
      const dims = request.feeds[signature.name].dims;
      if (dims.length === 0) return;
      if (rows === -1) rows = dims[0];
      else if (dims[0] !== rows) return; // inputs disagree on the batch: run alone
      key += '|';
      for (let i = 1; i < dims.length; i++) key += `${dims[i]},`;
    }
    if (rows <= 0) return;
    request.rows = rows;
    request.key = key;
  }

  /** Starts the next run if the model is free and a batch is due; otherwise (re)arms the delay timer. */
  private dispatch(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.busy) return;
    const head = this.queue[0];
    if (!head) {
      if (this.unbatchedRuns > 0) return; // the last of those resolves the waiters
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
      return;
    }
    const batching = this.batching;
    if (batching && batching.maxQueueDelayMs > 0 && !this.flushing && head.rows > 0) {
      const waited = performance.now() - head.submittedAt;
      if (
        waited < batching.maxQueueDelayMs &&
        this.compatibleRows(head, batching.maxBatchSize) < batching.maxBatchSize
      ) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.dispatch();
        }, batching.maxQueueDelayMs - waited);
        return;
      }
    }
    const batch = batching && head.rows > 0 ? this.takeBatch(head, batching.maxBatchSize) : [this.queue.shift()!];
    this.busy = true;
    this.runBatch(batch).finally(() => {
      this.busy = false;
      this.dispatch();
    });
  }

  /** Rows that one batch led by `head` could hold right now (stops counting at `limit`). */
  private compatibleRows(head: QueuedRequest, limit: number): number {
    let rows = 0;
    for (const r of this.queue) {
      if (r.key === head.key && r.rows > 0 && rows + r.rows <= limit) rows += r.rows;
      if (rows >= limit) break;
    }
    return rows;
  }

  /** Removes and returns the head plus the queued requests that fit in its batch, in arrival order. */
  private takeBatch(head: QueuedRequest, maxRows: number): QueuedRequest[] {
    const batch: QueuedRequest[] = [head];
    let rows = head.rows;
    let kept = 0;
    const q = this.queue;
    for (let i = 1; i < q.length; i++) {
      const r = q[i];
      if (rows < maxRows && r.key === head.key && r.rows > 0 && rows + r.rows <= maxRows) {
        batch.push(r);
        rows += r.rows;
      } else {
        q[kept++] = r;
      }
    }
    q.length = kept;
    return batch;
  }

  private async runBatch(batch: QueuedRequest[]): Promise<void> {
    const started = performance.now();
    if (batch.length === 1) return this.runAlone(batch[0], started);

    let rows = 0;
    for (const r of batch) rows += r.rows;
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      const feeds = this.mergeFeeds(batch, rows);
      const fetches = batch[0].fetches;
      results = fetches ? await this.model.session.run(feeds, fetches) : await this.model.session.run(feeds);
    } catch {
      // Some request in the batch made the run fail: find out which by running each alone.
      this.observeRun(this.model, rows, batch.length);
      for (const r of batch) await this.runAlone(r, started);
      return;
    }
    const computeMs = performance.now() - started;
    this.observeRun(this.model, rows, batch.length);
    for (const name in results) {
      const dims = results[name].dims;
      if (dims.length === 0 || dims[0] !== rows) {
        this.batching = undefined;
        this.log(
          `model "${this.model.name}" version "${this.model.version}": output "${name}" of a merged run has shape [${dims.join(',')}] for ${rows} rows, ` +
            'so its first dimension is not the batch; batching is now off for this model',
        );
        for (const r of batch) await this.runAlone(r, started);
        return;
      }
    }
    let offset = 0;
    for (const r of batch) {
      const outputs: Record<string, OutputTensor> = {};
      for (const name in results) outputs[name] = sliceRows(results[name], offset, r.rows);
      offset += r.rows;
      r.resolve({ outputs, queueMs: started - r.submittedAt, computeMs });
    }
  }

  private async runAlone(r: QueuedRequest, dispatchedAt: number): Promise<void> {
    const started = performance.now();
    try {
      const results = r.fetches
        ? await this.model.session.run(r.feeds, r.fetches)
        : await this.model.session.run(r.feeds);
      const ended = performance.now();
      this.observeRun(this.model, r.rows > 0 ? r.rows : firstDimOf(r.feeds), 1);
      r.resolve({ outputs: results, queueMs: dispatchedAt - r.submittedAt, computeMs: ended - started });
    } catch (err) {
      this.observeRun(this.model, r.rows > 0 ? r.rows : firstDimOf(r.feeds), 1);
      r.reject(err as Error);
    }
  }

  /** One tensor per input holding every request's rows, in batch order. */
  private mergeFeeds(batch: QueuedRequest[], rows: number): Record<string, ort.Tensor> {
    const merged: Record<string, ort.Tensor> = {};
    for (const signature of this.model.inputs) {
      const first = batch[0].feeds[signature.name];
      const dims = [rows, ...first.dims.slice(1)];
      if (first.type === 'string') {
        const data: string[] = [];
        for (const r of batch) for (const s of r.feeds[signature.name].data as string[]) data.push(s);
        merged[signature.name] = new ort.Tensor('string', data, dims);
        continue;
      }
      const firstData = first.data as TypedArray;
      let total = 0;
      for (const r of batch) total += r.feeds[signature.name].data.length;
      const data = new (firstData.constructor as new (n: number) => TypedArray)(total);
      let at = 0;
      for (const r of batch) {
        const part = r.feeds[signature.name].data as TypedArray;
        (data as Float32Array).set(part as Float32Array, at);
        at += part.length;
      }
      merged[signature.name] = new ort.Tensor(first.type as 'float32', data as Float32Array, dims);
    }
    return merged;
  }
}

function markStart(mark: { startedAt: number }): void {
  mark.startedAt = performance.now();
}

function firstDimOf(feeds: Record<string, ort.Tensor>): number {
  for (const name in feeds) return feeds[name].dims[0] ?? 1;
  return 1;
}

/** Rows [start, start+count) of a tensor whose first dimension is the batch: a view of the same data. */
function sliceRows(tensor: ort.Tensor, start: number, count: number): OutputTensor {
  const dims = tensor.dims;
  let rowSize = 1;
  for (let i = 1; i < dims.length; i++) rowSize *= dims[i];
  const from = start * rowSize;
  const to = from + count * rowSize;
  const data = tensor.data;
  const part = Array.isArray(data) ? data.slice(from, to) : (data as TypedArray).subarray(from, to);
  return { type: tensor.type, dims: [count, ...dims.slice(1)], data: part as ort.Tensor['data'] };
}
