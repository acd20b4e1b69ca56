import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  histogramQuantile,
  intervalBuckets,
  mergedBuckets,
  parsePrometheusText,
  sumOf,
} from '../../lib/monitor/prometheus';

const scrape = (pid: number, counts: [number, number, number, number]) => `
# HELP ferry_inference_request_duration_seconds latency
# TYPE ferry_inference_request_duration_seconds histogram
ferry_inference_request_duration_seconds_bucket{model="m",version="1",replica="${pid}",le="0.001"} ${counts[0]}
ferry_inference_request_duration_seconds_bucket{model="m",version="1",replica="${pid}",le="0.01"} ${counts[1]}
ferry_inference_request_duration_seconds_bucket{model="m",version="1",replica="${pid}",le="0.1"} ${counts[2]}
ferry_inference_request_duration_seconds_bucket{model="m",version="1",replica="${pid}",le="+Inf"} ${counts[3]}
ferry_inference_errors_total{model="m",version="1",code="400",replica="${pid}"} 2
`;

test('parses labels and values, sums counters across replicas', () => {
  const samples = parsePrometheusText(scrape(1, [1, 2, 3, 3]) + scrape(2, [0, 0, 4, 4]));
  assert.equal(sumOf(samples, 'ferry_inference_errors_total'), 4);
  assert.deepEqual(mergedBuckets(samples, 'ferry_inference_request_duration_seconds'), [
    { le: 0.001, count: 1 },
    { le: 0.01, count: 2 },
    { le: 0.1, count: 7 },
    { le: Infinity, count: 7 },
  ]);
});

test('quantiles interpolate inside the bucket, and are null without observations', () => {
  const buckets = [
    { le: 0.001, count: 0 },
    { le: 0.01, count: 10 },
    { le: Infinity, count: 10 },
  ];
  assert.ok(Math.abs(histogramQuantile(0.5, buckets)! - 0.0055) < 1e-12);
  assert.equal(
    histogramQuantile(0.5, [
      { le: 0.01, count: 0 },
      { le: Infinity, count: 0 },
    ]),
    null,
  );
});

test('interval buckets subtract the previous snapshot, even after a JSON round trip, and survive counter resets', () => {
  const prev = mergedBuckets(parsePrometheusText(scrape(1, [5, 5, 5, 5])), 'ferry_inference_request_duration_seconds');
  const now = mergedBuckets(parsePrometheusText(scrape(1, [5, 5, 9, 9])), 'ferry_inference_request_duration_seconds');
  const viaJson = JSON.parse(JSON.stringify(prev));
  const interval = intervalBuckets(now, viaJson);
  assert.deepEqual(
    interval.map((b) => b.count),
    [0, 0, 4, 4],
    'only the 4 slow requests of this interval',
  );
  assert.ok(histogramQuantile(0.5, interval)! > 0.01, 'interval p50 reflects the slow requests');
  const restarted = mergedBuckets(
    parsePrometheusText(scrape(2, [1, 1, 1, 1])),
    'ferry_inference_request_duration_seconds',
  );
  assert.deepEqual(
    intervalBuckets(restarted, now).map((b) => b.count),
    [1, 1, 1, 1],
  );
});
