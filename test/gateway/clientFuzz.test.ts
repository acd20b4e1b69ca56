/**
 * Malformed client requests against a real gateway serving a real replica (the MLP): the corpus of
 * nasty cases (fuzzCorpus/gatewayRequests.json: request heads, /d/ ids, the control API, broken HTTP,
 * stalled clients) and seeded random mutations of inference requests sent through /d/{id}. Each gets
 * a 4xx (the gateway's own, or the replica's passed through) or, for broken HTTP, a closed connection;
 * never a 5xx or a hang; the gateway keeps serving. Replay a failure with FUZZ_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  corpusBytes,
  type Endpoint,
  fuzzIterations,
  fuzzSeed,
  loadCorpus,
  Prng,
  rawExchange,
  toBytes,
  violation,
} from '../runtime/httpFuzz';
import { fuzzedRequest } from '../runtime/inferenceRequestFuzz';
import { echoAllDatatypesModel, writeModelDir } from '../runtime/onnxTestModels';
import { control, type GatewayFixture, inferThrough, MLP_V1, startTestGateway } from './gatewayFixture';

const WAIT_MS = 5000;

describe('gateway: malformed client requests', () => {
  let fx: GatewayFixture;
  let endpoint: Endpoint;

  before(async () => {
    fx = await startTestGateway('clientfuzz', {
      standby: false,
      limits: { headersTimeoutMs: 600, requestTimeoutMs: 1200 },
    });
    // The MLP and the echo model of every datatype: the generator's requests go to both.
    const modelDir = await writeModelDir(path.join(fx.dir, 'models'), [
      { name: 'mlp', version: '1', bytes: MLP_V1 },
      { name: 'echo', version: '1', bytes: echoAllDatatypesModel() },
    ]);
    const res = await control(fx.gateway.url, 'PUT', '/deployments/fz', { modelDir, replicas: 1, model: 'mlp' });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    endpoint = { port: Number(new URL(fx.gateway.url).port) };
  });

  after(() => fx.cleanup());

  async function stillServes(): Promise<void> {
    const res = await inferThrough(`${fx.gateway.url}/d/fz`);
    assert.equal(res.status, 200);
  }

  test('every case of the corpus gets a 4xx or a closed connection', async () => {
    const failures: string[] = [];
    for (const c of loadCorpus('gateway/fuzzCorpus/gatewayRequests.json')) {
      const rssBefore = process.memoryUsage().rss;
      const outcome = await rawExchange(endpoint, corpusBytes(c), WAIT_MS);
      const problem = violation(outcome, c.expect);
      if (problem) failures.push(`${c.name}: ${problem} (${JSON.stringify(outcome.text.slice(0, 300))})`);
      const growthMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
      if (c.maxRssGrowthMiB !== undefined && growthMiB > c.maxRssGrowthMiB)
        failures.push(`${c.name}: gateway RSS grew ${growthMiB.toFixed(0)} MiB (at most ${c.maxRssGrowthMiB})`);
    }
    assert.deepEqual(failures, []);
    await stillServes();
  });

  test('seeded random and malformed inference requests through /d/{id}: never a 5xx or a hang', async () => {
    const seed = fuzzSeed(0x6a7e);
    const iterations = fuzzIterations(300);
    const rng = new Prng(seed);
    const failures: string[] = [];
    const counts = new Map<string, number>();
    let next = 0;
    const client = async () => {
      while (next < iterations) {
        const n = next++;
        // The replica runs with the server's defaults: max batch 4096, 64 MiB bodies (mutations stay under).
        const { request, mutations, httpBroken } = fuzzedRequest(rng, {
          maxBatch: 4096,
          maxBodyBytes: 512 * 1024,
          pathPrefix: '/d/fz',
        });
        const outcome = await rawExchange(endpoint, toBytes(request), WAIT_MS);
        const key = outcome.status === undefined ? 'closed' : String(outcome.status);
        counts.set(key, (counts.get(key) ?? 0) + 1);
        const problem = violation(outcome, httpBroken ? 'closed' : outcome.status === 200 ? 200 : '4xx');
        if (problem)
          failures.push(
            `seed ${seed} case ${n} [${mutations.join(', ')}]: ${problem}: ${request.method} ${request.path.slice(0, 200)} ` +
              `${JSON.stringify(request.body.toString('latin1', 0, 300))} → ${JSON.stringify(outcome.text.slice(0, 300))}`,
          );
      }
    };
    await Promise.all(Array.from({ length: 8 }, client));
    console.log(
      `gateway fuzz seed ${seed}: ${iterations} requests, outcomes ${JSON.stringify(Object.fromEntries(counts))}`,
    );
    assert.deepEqual(failures.slice(0, 10), []);
    await stillServes();
  });
});
