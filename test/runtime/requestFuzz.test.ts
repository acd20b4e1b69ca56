/**
 * Fuzzing the inference server's hand-tuned parsers (HTTP framing is node's; the request envelope, the
 * tensors and the binary tensor extension are ours) on real onnxruntime sessions over 127.0.0.1:
 *  - the corpus of nasty cases (fuzzCorpus/inferenceServer.json): each gets a 4xx, or a closed
 *    connection for broken HTTP, and the ones that try to exhaust memory leave RSS bounded;
 *  - seeded random mutations of valid requests (JSON and binary, on a model with every datatype):
 *    never a 5xx, never a hang, and the server still answers correctly afterwards.
 * A failure prints its seed and case: replay it with FUZZ_SEED=<seed> (FUZZ_ITERATIONS for a longer run).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type InferenceServer, startInferenceServer } from '../../runtime/server/inferenceServer';
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
} from './httpFuzz';
import { fuzzedRequest } from './inferenceRequestFuzz';
import { ECHO_DATATYPES, echoAllDatatypesModel, mlpModel, writeModelDir } from './onnxTestModels';

const MAX_BATCH = 64;
const MAX_BODY_BYTES = 1024 * 1024;
/** The server's slow-client timeouts here, short so a stalled request is cut within the test's wait. */
const HEADERS_TIMEOUT_MS = 600;
const REQUEST_TIMEOUT_MS = 1200;
const WAIT_MS = 5000;

const DATATYPES = Object.keys(ECHO_DATATYPES);

describe('inference server request fuzzing', () => {
  let dir: string;
  let server: InferenceServer;
  let endpoint: Endpoint;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-fuzz-'));
    await writeModelDir(dir, [
      { name: 'mlp', version: '1', bytes: mlpModel({ inputDim: 4, hiddenDims: [8], outputDim: 3, seed: 3 }) },
      { name: 'echo', version: '1', bytes: echoAllDatatypesModel() },
    ]);
    server = await startInferenceServer({
      modelDir: dir,
      port: 0,
      maxBatch: MAX_BATCH,
      maxBodyBytes: MAX_BODY_BYTES,
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    });
    endpoint = { port: Number(new URL(server.url).port) };
  });

  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function stillServes(): Promise<void> {
    const res = await fetch(`${server.url}/v2/models/mlp/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
    });
    assert.equal(res.status, 200, await res.text());
  }

  test('every case of the corpus gets a 4xx or a closed connection, with RSS bounded', async () => {
    const failures: string[] = [];
    for (const c of loadCorpus('runtime/fuzzCorpus/inferenceServer.json')) {
      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      const outcome = await rawExchange(endpoint, corpusBytes(c), WAIT_MS);
      const growthMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
      const problem = violation(outcome, c.expect);
      if (problem) failures.push(`${c.name}: ${problem} (${JSON.stringify(outcome.text.slice(0, 300))})`);
      if (c.maxRssGrowthMiB !== undefined && growthMiB > c.maxRssGrowthMiB)
        failures.push(`${c.name}: RSS grew ${growthMiB.toFixed(0)} MiB (at most ${c.maxRssGrowthMiB})`);
    }
    assert.deepEqual(failures, []);
    await stillServes();
  });

  test('a shape whose element count would exhaust memory is a 400 naming the max batch, and RSS stays put', async () => {
    const rssBefore = process.memoryUsage().rss;
    for (const rows of [MAX_BATCH + 1, 2 ** 31, 2 ** 53]) {
      const res = await fetch(`${server.url}/v2/models/echo/infer`, {
        method: 'POST',
        body: JSON.stringify({
          inputs: DATATYPES.map((t) => ({ name: `x_${t}`, datatype: t, shape: [rows], data: [] })),
        }),
      });
      assert.equal(res.status, 400);
      assert.match(
        ((await res.json()) as { error: string }).error,
        new RegExp(`batch of .* rows, more than .* \\(${MAX_BATCH}, FERRY_MAX_BATCH\\)`),
      );
    }
    const grewMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    assert.ok(grewMiB < 32, `RSS grew ${grewMiB.toFixed(0)} MiB`);
    // At the max batch exactly, the request is served.
    const res = await fetch(`${server.url}/v2/models/mlp/infer`, {
      method: 'POST',
      body: JSON.stringify({
        inputs: [{ name: 'input', datatype: 'FP32', shape: [MAX_BATCH, 4], data: new Array(MAX_BATCH * 4).fill(0.5) }],
      }),
    });
    assert.equal(res.status, 200);
  });

  test('seeded random and malformed requests: never a 5xx, a crash or a hang', async () => {
    const seed = fuzzSeed(0x5eed_0009);
    const iterations = fuzzIterations(600);
    const rng = new Prng(seed);
    const rssBefore = process.memoryUsage().rss;
    const failures: string[] = [];
    const counts = new Map<string, number>();
    // A pool of clients: stalled requests take a timeout to be cut, the rest are quick. Requests are
    // generated in case order whatever the timing, so a seed always makes the same cases.
    let next = 0;
    const client = async () => {
      while (next < iterations) {
        const n = next++;
        const { request, mutations, httpBroken } = fuzzedRequest(rng, {
          maxBatch: MAX_BATCH,
          maxBodyBytes: MAX_BODY_BYTES,
        });
        const outcome = await rawExchange(endpoint, toBytes(request), WAIT_MS);
        const key = outcome.status === undefined ? 'closed' : String(outcome.status);
        counts.set(key, (counts.get(key) ?? 0) + 1);
        // A mutation may leave a request valid (a 200); HTTP-level breakage may be answered or just closed.
        const problem = violation(outcome, httpBroken ? 'closed' : outcome.status === 200 ? 200 : '4xx');
        if (problem)
          failures.push(
            `seed ${seed} case ${n} [${mutations.join(', ')}]: ${problem}: ${request.method} ${request.path.slice(0, 200)} ` +
              `${JSON.stringify(request.headers)} ${JSON.stringify(request.body.toString('latin1', 0, 400))} → ${JSON.stringify(outcome.text.slice(0, 300))}`,
          );
      }
    };
    await Promise.all(Array.from({ length: 16 }, client));
    const grewMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    console.log(
      `fuzz seed ${seed}: ${iterations} requests, outcomes ${JSON.stringify(Object.fromEntries(counts))}, RSS ${grewMiB >= 0 ? '+' : ''}${grewMiB.toFixed(0)} MiB`,
    );
    assert.deepEqual(failures.slice(0, 10), []);
    assert.ok(grewMiB < 128, `RSS grew ${grewMiB.toFixed(0)} MiB over the run`);
    await stillServes();
  });
});
