/** `ferry batch`'s reading of the runner's output and its progress line. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type BatchEvent,
  BatchEventReader,
  formatBatchProgress,
  parseContainerLogRecord,
} from '../../client/cli/batchProgress';

test('events are read across chunk boundaries; other lines are the log', () => {
  const events: BatchEvent[] = [];
  const other: string[] = [];
  const reader = new BatchEventReader(
    (e) => events.push(e),
    (l) => other.push(l),
  );
  reader.push('{"ferryBatch":"progress","total":3,"alreadyDone":0,"succ');
  reader.push(
    'eeded":1,"failed":0}\nsome log line\n{"ferryBatch":"summary","total":3,"alreadyDone":0,"succeeded":3,"failed":0}\n',
  );
  reader.push('{"ferryBatch": not json\n');
  assert.deepEqual(
    events.map((e) => [e.ferryBatch, e.succeeded]),
    [
      ['progress', 1],
      ['summary', 3],
    ],
  );
  assert.deepEqual(other, ['some log line', '{"ferryBatch": not json']);
});

test("conmon's k8s-file records: stream, partial flag and text", () => {
  assert.deepEqual(parseContainerLogRecord('2026-12-03T14:00:00.123456789+00:00 stdout F {"a":1}'), {
    stream: 'stdout',
    partial: false,
    text: '{"a":1}',
  });
  assert.deepEqual(parseContainerLogRecord('2026-12-03T14:00:00.1+00:00 stderr P half'), {
    stream: 'stderr',
    partial: true,
    text: 'half',
  });
  assert.equal(parseContainerLogRecord('garbage'), undefined);
});

test("the progress line: done of total, this run's rate and ETA, failures and what was done before", () => {
  const line = formatBatchProgress({ total: 300, alreadyDone: 100, succeeded: 48, failed: 2 }, 5);
  assert.match(line, /^\[#+\.+\] {2}50% 150\/300 files, 10 files\/s, ETA 15s, 2 failed \(100 done before\)$/);
  assert.match(
    formatBatchProgress({ total: 10, alreadyDone: 0, succeeded: 0, failed: 0 }, 0),
    /0\/10 files, 0\.0 files\/s, ETA \?/,
  );
  assert.match(
    formatBatchProgress({ total: 4, alreadyDone: 4, succeeded: 0, failed: 0 }, 1),
    /100% 4\/4 files.*ETA 0s/,
  );
  assert.match(formatBatchProgress({ total: 100000, alreadyDone: 0, succeeded: 10, failed: 0 }, 10), /ETA 27h46m/);
});
