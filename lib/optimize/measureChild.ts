/**
 * Measures ONE candidate model in a process of its own (spawned by lib/optimize/measure.ts), so that the
 * peak resident memory it reports belongs to this model alone, and so that a model that crashes
 * onnxruntime takes down only this process.
 *
 *   node <esbuild bundle of this file> <request.json> <response.json>   (measure.ts builds and starts it)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import {
  latencyStats,
  type MeasureRequest,
  type MeasureResponse,
  type OutputsWire,
  type TimedRuns,
} from './measureProtocol';
import { measureRowIndependence, type RowIndependence } from './rowIndependence';
import { type FeedTensorWire, feedsFromWire, toOrtFeeds } from './sampleInputs';

// If the engine that started us dies, there is nobody to report to: stop.
process.on('disconnect', () => process.exit(3));

async function main(requestPath: string, responsePath: string): Promise<void> {
  const req = JSON.parse(readFileSync(requestPath, 'utf8')) as MeasureRequest;
  const respond = (res: MeasureResponse) => writeFileSync(responsePath, JSON.stringify(res));
  // Current RSS, sampled: getrusage's maxRSS is no good here, since Linux carries the parent's RSS at fork
  // into the child's high-water mark, and the engine that starts us may be larger than any model.
  const rssBeforeLoadBytes = process.memoryUsage.rss();
  peakRss = rssBeforeLoadBytes;

  let session: ort.InferenceSession;
  const t0 = process.hrtime.bigint();
  try {
    session = await ort.InferenceSession.create(req.modelPath, { ...req.sessionOptions, logSeverityLevel: 3 });
  } catch (err) {
    respond({ ok: false, stage: 'load', error: (err as Error).message });
    return;
  }
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  samplePeak();

  let stage: 'agreement' | 'batch1' | 'large-batch' = 'batch1';
  try {
    // Batch-1 timing first, and the peak RSS right after it: what a replica serving single requests holds.
    const batch1 = await timeRuns(session, toOrtFeeds(feedsFromWire(req.batch1)), req);
    const peakRssBytes = peakRss;

    stage = 'agreement';
    const outputs: OutputsWire = { runs: [], skipped: [] };
    for (const wire of req.agreement) {
      const result = await session.run(toOrtFeeds(feedsFromWire(wire)));
      const run: Record<string, FeedTensorWire> = {};
      for (const [name, value] of Object.entries(result)) {
        const t = value as ort.Tensor;
        if (!(t instanceof ort.Tensor) || typeof t.data === 'string' || Array.isArray(t.data) || t.type === 'string') {
          if (!outputs.skipped.includes(name)) outputs.skipped.push(name);
          continue;
        }
        const data = t.data as ArrayBufferView;
        run[name] = {
          type: t.type as FeedTensorWire['type'],
          dims: [...t.dims],
          base64: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
        };
      }
      outputs.runs.push(run);
    }
    writeFileSync(req.outputsPath, JSON.stringify(outputs));

    let largeBatch: TimedRuns | undefined;
    let largeBatchError: string | undefined;
    let rowIndependence: RowIndependence | undefined;
    if (req.largeBatch) {
      stage = 'large-batch';
      try {
        const feeds = toOrtFeeds(feedsFromWire(req.largeBatch.feeds));
        largeBatch = await timeRuns(session, feeds, req);
        rowIndependence = await measureRowIndependence(
          session,
          feeds,
          req.largeBatch.batchSize,
          await session.run(feeds),
        );
      } catch (err) {
        largeBatchError = (err as Error).message;
      }
    }
    await session.release();
    respond({
      ok: true,
      loadMs,
      rssBeforeLoadBytes,
      peakRssBytes,
      batch1,
      largeBatch,
      largeBatchError,
      rowIndependence,
    });
  } catch (err) {
    respond({ ok: false, stage, error: (err as Error).message });
  }
}

let peakRss = 0;
function samplePeak(): void {
  const rss = process.memoryUsage.rss();
  if (rss > peakRss) peakRss = rss;
}

async function timeRuns(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  req: MeasureRequest,
): Promise<TimedRuns> {
  for (let i = 0; i < req.warmup; i++) {
    await session.run(feeds);
    samplePeak();
  }
  const ms: number[] = [];
  const start = performance.now();
  while (
    ms.length < req.maxIterations &&
    (ms.length < req.minIterations || performance.now() - start < req.measureMs)
  ) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    samplePeak(); // outside the timed interval
  }
  return latencyStats(ms);
}

const [requestPath, responsePath] = process.argv.slice(2);
if (!requestPath || !responsePath) {
  console.error('usage: measureChild.ts <request.json> <response.json>');
  process.exit(2);
}
main(requestPath, responsePath).then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
