/**
 * Entrypoint of a batch image (bundled to /app/batch.js): runs every request file of FERRY_BATCH_INPUT
 * through the image's model into FERRY_BATCH_OUTPUT (settings.ts, batchRunner.ts), then exits.
 *
 * stdout carries one JSON line per progress report (at most a few a second, and the last one always),
 * `{"ferryBatch":"progress","total":..,"alreadyDone":..,"succeeded":..,"failed":..}`, then
 * `{"ferryBatch":"summary",...}` without the failure list (that is in batch-summary.json): `ferry batch`
 * draws its progress bar from these. Other messages go to stderr.
 *
 * Exit status: 0 every request answered; 2 the batch ran through but some requests failed (see errors/);
 * 1 it could not run (no models, an unreadable input, an output that cannot be written); 143 stopped by
 * SIGTERM (requests in flight were finished and written first; a rerun resumes).
 */

import { openLocation } from './batchLocation';
import { type BatchProgress, type BatchSummary, runBatch } from './batchRunner';
import { readBatchSettings } from './settings';

const PROGRESS_EVERY_MS = 250;

function line(event: 'progress' | 'summary', fields: object): void {
  process.stdout.write(`${JSON.stringify({ ferryBatch: event, ...fields })}\n`);
}

function log(message: string): void {
  process.stderr.write(`${new Date().toISOString()} ${message}\n`);
}

async function main(): Promise<number> {
  const settings = readBatchSettings();
  const input = openLocation(settings.input, settings.s3);
  const output = openLocation(settings.output, settings.s3);
  const stop = new AbortController();
  const onSignal = (signal: string) => {
    if (stop.signal.aborted) process.exit(143);
    log(`${signal}: finishing the requests in flight, then stopping (a rerun resumes)`);
    stop.abort();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  log(`batch ${input.describe} -> ${output.describe}, ${settings.concurrency} at a time`);
  let lastAt = 0;
  let last: BatchProgress | undefined;
  const summary: BatchSummary = await runBatch({
    modelDir: settings.modelDir,
    input,
    output,
    concurrency: settings.concurrency,
    model: settings.model,
    signal: stop.signal,
    onProgress: (p) => {
      last = p;
      const now = Date.now();
      if (now - lastAt >= PROGRESS_EVERY_MS) {
        lastAt = now;
        line('progress', p);
      }
    },
  });
  if (last) line('progress', last);
  const { failures, ...totals } = summary;
  line('summary', totals);
  for (const f of failures.slice(0, 10)) log(`failed: ${f.request} (${f.status}): ${f.error}`);
  if (failures.length > 10) log(`... and ${failures.length - 10} more: see errors/ in ${output.describe}`);
  if (summary.interrupted) return 143;
  return summary.failed > 0 ? 2 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    log(`fatal: ${err.message}`);
    process.exit(1);
  },
);
