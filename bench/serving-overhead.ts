/**
 * What serving costs on top of onnxruntime: latency and saturated throughput of the inference server
 * (and of gateway + server, when lib/gateway starts here) against `session.run` in this process, for the
 * same small model, input and session options, all measured in the same run.
 *
 *   npx tsx bench/serving-overhead.ts [--runs 3] [--seconds 5] [--connections 16] [--models small,medium]
 *                                     [--input-dim 64 --hidden 256,256 --output-dim 10]   (a custom MLP instead)
 *
 * Load: wrk (Debian package, installed if missing) on 127.0.0.1, keep-alive. Latency: 1 connection,
 * one request at a time (p50/p99 from wrk) vs sequential session.run (p50/p99 from performance.now).
 * Throughput: `--connections` closed-loop connections vs back-to-back session.run. Targets (issue 4):
 * added p50 ≤ 0.3 ms; throughput ≥ 85% of in-process. Every figure is the median of `--runs` rounds,
 * with (min–max) across rounds: the machine is shared, so read the spread before the median.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { generateMlpModel } from '../lib/onnx/generate';
import { startInferenceServer } from '../runtime/server';
import {
  ensureWrk,
  inProcessLatency,
  inProcessThroughput,
  type LoadResult,
  log,
  machineLine,
  median,
  runWrk,
  spread,
  writeServingDir,
} from './servingLoad';

interface Round {
  inProcess: { p50Ms: number; p99Ms: number; rps: number };
  /** node:http answering a fixed, same-sized JSON without parsing or inference: the HTTP stack's ceiling. */
  bareHttp: LoadResult;
  server: { latency: LoadResult; load: LoadResult };
  /** Same server, input and output as binary tensor data (no JSON numbers either way). */
  binary: { latency: LoadResult; load: LoadResult };
  batched: { latency: LoadResult; load: LoadResult };
  gateway?: { latency: LoadResult; load: LoadResult };
  /** Gateway + a replica serving with batching on: Ferry as one-click deploys an MLP like this one. */
  gatewayBatched?: { latency: LoadResult; load: LoadResult };
}

interface ModelSpec {
  label: string;
  inputDim: number;
  hiddenDims: number[];
  outputDim: number;
}

/** small: onnxruntime runs it in tens of µs, so serving costs show; medium: compute dominates a request. */
const PRESETS: Record<string, ModelSpec> = {
  small: { label: 'small', inputDim: 64, hiddenDims: [256, 256], outputDim: 10 },
  medium: { label: 'medium', inputDim: 512, hiddenDims: [2048, 2048], outputDim: 16 },
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '16' },
      models: { type: 'string', default: 'small,medium' },
      'input-dim': { type: 'string' },
      hidden: { type: 'string' },
      'output-dim': { type: 'string' },
      'no-gateway': { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const specs: ModelSpec[] = values.hidden
    ? [
        {
          label: 'custom',
          inputDim: Number(values['input-dim'] ?? 64),
          hiddenDims: values.hidden.split(',').map(Number),
          outputDim: Number(values['output-dim'] ?? 10),
        },
      ]
    : values.models!.split(',').map((name) => {
        const spec = PRESETS[name];
        if (!spec)
          throw new Error(
            `unknown model preset "${name}" (presets: ${Object.keys(PRESETS).join(', ')}; or --input-dim/--hidden/--output-dim)`,
          );
        return spec;
      });
  ensureWrk();
  const startGateway = values['no-gateway'] ? undefined : await loadGateway();
  const reports: string[] = [];
  for (const spec of specs) reports.push(await benchModel(spec, { runs, seconds, connections, startGateway }));
  console.log(reports.join('\n\n'));
}

async function benchModel(
  spec: ModelSpec,
  o: { runs: number; seconds: number; connections: number; startGateway: StartGateway | undefined },
): Promise<string> {
  const { inputDim, hiddenDims, outputDim } = spec;
  const { runs, seconds, connections, startGateway } = o;
  const bytes = generateMlpModel({ inputDim, hiddenDims, outputDim, seed: 7 });
  // One intra-op thread: the second core is the load generator's (and the HTTP stack's). Same options everywhere.
  const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-overhead-'));
  const plainDir = await writeServingDir(path.join(tmp, 'plain'), 'm', bytes, { sessionOptions });
  const batchedDir = await writeServingDir(path.join(tmp, 'batched'), 'm', bytes, {
    sessionOptions,
    batching: { maxBatchSize: 32, maxQueueDelayMs: 0 },
  });
  const input = Float32Array.from({ length: inputDim }, (_, i) => Math.sin(i));
  const body = JSON.stringify({
    inputs: [{ name: 'input', shape: [1, inputDim], datatype: 'FP32', data: Array.from(input) }],
  });
  const binary = binaryRequest(input);
  const feeds = { input: new ort.Tensor('float32', input, [1, inputDim]) };
  const session = await ort.InferenceSession.create(bytes, sessionOptions);
  const fixedAnswer = await answerOf(plainDir, body);

  const rounds: Round[] = [];
  try {
    for (let r = 0; r < runs; r++) {
      log(`${spec.label} model, round ${r + 1}/${runs}: in-process onnxruntime`);
      const lat = await inProcessLatency(session, feeds, 5000);
      const rps = await inProcessThroughput(session, feeds, seconds);
      const round: Round = { inProcess: { ...lat, rps } } as Round;

      log(`${spec.label} model, round ${r + 1}/${runs}: bare node:http (ceiling)`);
      const bare = await startBareHttp(fixedAnswer);
      await runWrk({ url: bare.url, body, connections: 4, seconds: 1 });
      round.bareHttp = await runWrk({ url: bare.url, body, connections, seconds });
      await bare.close();

      for (const [key, dir] of [
        ['server', plainDir],
        ['binary', plainDir],
        ['batched', batchedDir],
      ] as const) {
        log(`${spec.label} model, round ${r + 1}/${runs}: server (${key})`);
        const server = await startInferenceServer({ modelDir: dir, port: 0 });
        const url = `${server.url}/v2/models/m/infer`;
        const load = key === 'binary' ? { url, ...binary } : { url, body };
        await runWrk({ ...load, connections: 4, seconds: 1 }); // warm-up: JIT, connection setup
        round[key] = {
          latency: await runWrk({ ...load, connections: 1, seconds }),
          load: await runWrk({ ...load, connections, seconds }),
        };
        await server.close();
      }

      if (startGateway) {
        log(`${spec.label} model, round ${r + 1}/${runs}: gateway + server (replica process)`);
        try {
          round.gateway = await throughGateway(
            startGateway,
            path.join(tmp, `gw-${r}`),
            plainDir,
            body,
            connections,
            seconds,
          );
          round.gatewayBatched = await throughGateway(
            startGateway,
            path.join(tmp, `gwb-${r}`),
            batchedDir,
            body,
            connections,
            seconds,
          );
        } catch (err) {
          log(`gateway round failed, reporting the server alone: ${(err as Error).message}`);
        }
      }
      rounds.push(round);
    }
  } finally {
    await session.release();
    await rm(tmp, { recursive: true, force: true });
  }
  return report(rounds, {
    label: spec.label,
    inputDim,
    hiddenDims,
    outputDim,
    bytes: bytes.length,
    connections,
    seconds,
  });
}

/** The same input as binary tensor data, asking for binary outputs too. */
function binaryRequest(input: Float32Array): { body: Buffer; headers: Record<string, string> } {
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        {
          name: 'input',
          shape: [1, input.length],
          datatype: 'FP32',
          parameters: { binary_data_size: input.byteLength },
        },
      ],
      parameters: { binary_data_output: true },
    }),
  );
  return {
    body: Buffer.concat([header, Buffer.from(input.buffer, input.byteOffset, input.byteLength)]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
  };
}

/** The server's real answer to `body`, to be replayed by the bare HTTP server. */
async function answerOf(modelDir: string, body: string): Promise<string> {
  const server = await startInferenceServer({ modelDir, port: 0 });
  try {
    const res = await fetch(`${server.url}/v2/models/m/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    if (!res.ok) throw new Error(`the server answered ${res.status}: ${await res.text()}`);
    return await res.text();
  } finally {
    await server.close();
  }
}

/** Reads the whole request body (as any server must), answers a fixed JSON: nothing else. */
async function startBareHttp(answer: string): Promise<{ url: string; close(): Promise<void> }> {
  const length = Buffer.byteLength(answer);
  const server = http.createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': length });
      res.end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

type StartGateway = typeof import('../lib/gateway').startGateway;

async function loadGateway(): Promise<StartGateway | undefined> {
  try {
    return (await import('../lib/gateway')).startGateway;
  } catch (err) {
    log(`lib/gateway does not load here (${(err as Error).message}): measuring the server alone`);
    return undefined;
  }
}

async function throughGateway(
  startGateway: StartGateway,
  stateDir: string,
  modelDir: string,
  body: string,
  connections: number,
  seconds: number,
) {
  const gateway = await startGateway({ port: 0, stateDir, log: () => {} });
  try {
    const put = await fetch(`${gateway.url}/_ferry/deployments/bench`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', replicas: 1, modelDir }),
    });
    const status = (await put.json()) as { endpoint?: string; error?: string };
    if (!put.ok || !status.endpoint)
      throw new Error(`deploy through the gateway failed: ${put.status} ${JSON.stringify(status)}`);
    const url = `${status.endpoint}/v2/models/m/infer`;
    await runWrk({ url, body, connections: 4, seconds: 1 });
    return {
      latency: await runWrk({ url, body, connections: 1, seconds }),
      load: await runWrk({ url, body, connections, seconds }),
    };
  } finally {
    await gateway.close({ stopReplicas: true });
  }
}

function report(
  rounds: Round[],
  m: {
    label: string;
    inputDim: number;
    hiddenDims: number[];
    outputDim: number;
    bytes: number;
    connections: number;
    seconds: number;
  },
): string {
  const lines: string[] = [];
  const say = (line: string) => lines.push(line);
  const col = <T>(f: (r: Round) => T | undefined) => rounds.map(f).filter((x): x is T => x !== undefined);
  const errors = rounds.reduce(
    (a, r) =>
      a +
      r.bareHttp.errors +
      r.binary.latency.errors +
      r.binary.load.errors +
      r.server.latency.errors +
      r.server.load.errors +
      r.batched.load.errors +
      (r.gateway ? r.gateway.latency.errors + r.gateway.load.errors : 0) +
      (r.gatewayBatched ? r.gatewayBatched.load.errors : 0),
    0,
  );
  say(
    `serving overhead, ${m.label} model — MLP ${m.inputDim}→${m.hiddenDims.join('→')}→${m.outputDim} (${(m.bytes / 1e6).toFixed(2)} MB), batch-1 requests (JSON unless said), intraOpNumThreads 1`,
  );
  say(machineLine());
  say(
    `${rounds.length} round(s); each figure: median (min–max) over rounds; wrk ${m.seconds}s per figure; load errors: ${errors}`,
  );
  say('');
  say('latency, one request at a time               p50                      p99');
  const row = (label: string, p50: number[], p99: number[]) =>
    say(`  ${label.padEnd(42)} ${spread(p50, 3, ' ms').padEnd(24)} ${spread(p99, 3, ' ms')}`);
  row(
    'in-process session.run (baseline)',
    col((r) => r.inProcess.p50Ms),
    col((r) => r.inProcess.p99Ms),
  );
  row(
    'server (HTTP/JSON, keep-alive)',
    col((r) => r.server.latency.p50Ms),
    col((r) => r.server.latency.p99Ms),
  );
  row(
    'server, binary tensors in and out',
    col((r) => r.binary.latency.p50Ms),
    col((r) => r.binary.latency.p99Ms),
  );
  row(
    'server, batching on (delay 0)',
    col((r) => r.batched.latency.p50Ms),
    col((r) => r.batched.latency.p99Ms),
  );
  const gw = col((r) => r.gateway);
  if (gw.length)
    row(
      'gateway + server',
      gw.map((g) => g.latency.p50Ms),
      gw.map((g) => g.latency.p99Ms),
    );
  const added = col((r) => r.server.latency.p50Ms - r.inProcess.p50Ms);
  say(
    `  added p50, server: ${spread(added, 3, ' ms')}   (target ≤ 0.3 ms: ${median(added) <= 0.3 ? 'met' : 'NOT met'})`,
  );
  if (gw.length) {
    const addedGw = col((r) => (r.gateway ? r.gateway.latency.p50Ms - r.inProcess.p50Ms : undefined));
    say(
      `  added p50, gateway + server: ${spread(addedGw, 3, ' ms')}   (target ≤ 0.3 ms: ${median(addedGw) <= 0.3 ? 'met' : 'NOT met'})`,
    );
  }
  say('');
  say(`saturated throughput (${m.connections} connections)          req/s                    vs in-process`);
  const base = col((r) => r.inProcess.rps);
  const trow = (label: string, rps: number[], ratio: number[]) =>
    say(
      `  ${label.padEnd(42)} ${spread(rps, 0).padEnd(24)} ${spread(
        ratio.map((x) => x * 100),
        0,
        '%',
      )}`,
    );
  trow(
    'in-process session.run loop (baseline)',
    base,
    base.map(() => 1),
  );
  trow(
    'bare node:http, fixed answer (HTTP ceiling)',
    col((r) => r.bareHttp.requestsPerSecond),
    col((r) => r.bareHttp.requestsPerSecond / r.inProcess.rps),
  );
  trow(
    'server, batching off',
    col((r) => r.server.load.requestsPerSecond),
    col((r) => r.server.load.requestsPerSecond / r.inProcess.rps),
  );
  trow(
    'server, binary tensors, batching off',
    col((r) => r.binary.load.requestsPerSecond),
    col((r) => r.binary.load.requestsPerSecond / r.inProcess.rps),
  );
  trow(
    'server, batching on (delay 0)',
    col((r) => r.batched.load.requestsPerSecond),
    col((r) => r.batched.load.requestsPerSecond / r.inProcess.rps),
  );
  if (gw.length)
    trow(
      'gateway + server, batching off',
      gw.map((g) => g.load.requestsPerSecond),
      col((r) => (r.gateway ? r.gateway.load.requestsPerSecond / r.inProcess.rps : undefined)),
    );
  const gwb = col((r) => r.gatewayBatched);
  if (gwb.length)
    trow(
      'gateway + server, batching on (as deployed)',
      gwb.map((g) => g.load.requestsPerSecond),
      col((r) => (r.gatewayBatched ? r.gatewayBatched.load.requestsPerSecond / r.inProcess.rps : undefined)),
    );
  const ratio = median(col((r) => r.server.load.requestsPerSecond / r.inProcess.rps));
  const ratioBatched = median(col((r) => r.batched.load.requestsPerSecond / r.inProcess.rps));
  const ratioDeployed = gwb.length
    ? median(col((r) => (r.gatewayBatched ? r.gatewayBatched.load.requestsPerSecond / r.inProcess.rps : undefined)))
    : undefined;
  // One-click images serve an MLP like this one with batching on (the optimize stage measures its rows
  // independent and batch 16 worth it: lib/optimize/servingBatching.ts), so "batching on" is Ferry as deployed.
  const verdict = (x: number) => `${x >= 0.85 ? 'met' : 'NOT met'} (${(x * 100).toFixed(0)}%)`;
  say(
    `  target ≥ 85% of in-process: ${ratioDeployed !== undefined ? `as deployed (gateway + batching on) ${verdict(ratioDeployed)}; ` : ''}` +
      `server alone, batching on ${verdict(ratioBatched)}; batching forced off ${verdict(ratio)}`,
  );
  say(
    `  p99 under load: server ${spread(
      col((r) => r.server.load.p99Ms),
      2,
      ' ms',
    )}, batched ${spread(
      col((r) => r.batched.load.p99Ms),
      2,
      ' ms',
    )}`,
  );
  return lines.join('\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
