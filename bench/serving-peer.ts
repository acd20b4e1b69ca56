/**
 * Ferry's inference server against the peer: the same ONNX model served the way a Python user would,
 * a BentoML service around onnxruntime (bench/peers/bentoml/service.py), on the same machine, with the
 * same input, session options (one intra-op thread) and load, measured in the same run.
 *
 *   npx tsx bench/serving-peer.ts [--runs 3] [--seconds 5] [--connections 16] [--hidden 256,256]
 *
 * The peer's Python environment is `~/.cache/ferry/bench-venv` (created, and `bentoml onnxruntime`
 * pip-installed into it, when missing). Load: wrk on 127.0.0.1, keep-alive; latency with 1 connection,
 * throughput with `--connections`. Each side answers in its own JSON (Open Inference Protocol for Ferry,
 * `{"input": [[…]]}` for BentoML); both answers are checked against each other first. Rounds interleave
 * the servers; every figure is the median (min–max) over rounds.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { freePort } from '../lib/gateway/replicaProcess';
import { generateMlpModel } from '../lib/onnx/generate';
import { startInferenceServer } from '../runtime/server';
import { ensurePeerPython } from './peers/peerVenv';
import { ensureWrk, type LoadResult, log, machineLine, median, runWrk, spread, writeServingDir } from './servingLoad';

const SERVICE_DIR = path.join(__dirname, 'peers', 'bentoml');

interface Peer {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startPeer(bentoml: string, modelFile: string, batchable: boolean): Promise<Peer> {
  const port = await freePort();
  const child = spawn(bentoml, ['serve', 'service:OnnxModel', '--host', '127.0.0.1', '--port', String(port)], {
    cwd: SERVICE_DIR,
    env: {
      ...process.env,
      FERRY_PEER_MODEL: modelFile,
      FERRY_PEER_BATCHABLE: batchable ? '1' : '0',
      BENTOML_DO_NOT_TRACK: 'True',
      BENTOML_HOME: path.join(path.dirname(modelFile), 'bentoml-home'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: BentoML forks workers, all stopped together
  });
  let output = '';
  child.stdout!.on('data', (c) => (output += c));
  child.stderr!.on('data', (c) => (output += c));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {}
    await Promise.race([exited, sleep(10_000)]);
    if (child.exitCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {}
    }
  };
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`bentoml serve exited with ${child.exitCode}:\n${output}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) return { url, child, stop };
    } catch {}
    await sleep(250);
  }
  await stop();
  throw new Error(`bentoml serve was not ready within 120 s:\n${output.slice(-3000)}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '16' },
      'input-dim': { type: 'string', default: '64' },
      hidden: { type: 'string', default: '256,256' },
      'output-dim': { type: 'string', default: '10' },
      batching: { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const inputDim = Number(values['input-dim']);
  const hiddenDims = values.hidden!.split(',').map(Number);
  const outputDim = Number(values['output-dim']);
  ensureWrk();
  // The bentoml CLI lands next to the venv's python.
  const bentoml = path.join(path.dirname(ensurePeerPython(['bentoml', 'onnxruntime'])), 'bentoml');

  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-peer-'));
  const bytes = generateMlpModel({ inputDim, hiddenDims, outputDim, seed: 5 });
  const modelFile = path.join(tmp, 'model.onnx');
  await writeFile(modelFile, bytes);
  const sessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  const batching = values.batching ? { maxBatchSize: 32, maxQueueDelayMs: 0 } : undefined;
  const modelDir = await writeServingDir(path.join(tmp, 'ferry'), 'm', bytes, {
    sessionOptions,
    ...(batching ? { batching } : {}),
  });
  const input = Array.from({ length: inputDim }, (_, i) => Math.sin(i * 0.7));
  const ferryBody = JSON.stringify({
    inputs: [{ name: 'input', shape: [1, inputDim], datatype: 'FP32', data: input }],
  });
  const peerBody = JSON.stringify({ input: [input] });

  type Side = { latency: LoadResult; load: LoadResult };
  const ferry: Side[] = [];
  const peer: Side[] = [];
  try {
    for (let r = 0; r < runs; r++) {
      log(`round ${r + 1}/${runs}: Ferry`);
      const server = await startInferenceServer({ modelDir, port: 0 });
      const ferryUrl = `${server.url}/v2/models/m/infer`;
      try {
        await runWrk({ url: ferryUrl, body: ferryBody, connections: 4, seconds: 1 });
        ferry.push({
          latency: await runWrk({ url: ferryUrl, body: ferryBody, connections: 1, seconds }),
          load: await runWrk({ url: ferryUrl, body: ferryBody, connections, seconds }),
        });
      } finally {
        if (r > 0) await server.close();
      }

      log(`round ${r + 1}/${runs}: BentoML peer (starting)`);
      const p = await startPeer(bentoml, modelFile, Boolean(batching));
      try {
        const peerUrl = `${p.url}/predict`;
        if (r === 0) {
          await checkSameAnswers(ferryUrl, ferryBody, peerUrl, peerBody);
          await server.close();
        }
        log(`round ${r + 1}/${runs}: BentoML peer`);
        await runWrk({ url: peerUrl, body: peerBody, connections: 4, seconds: 1 });
        peer.push({
          latency: await runWrk({ url: peerUrl, body: peerBody, connections: 1, seconds }),
          load: await runWrk({ url: peerUrl, body: peerBody, connections, seconds }),
        });
      } finally {
        await p.stop();
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }

  const errors = [...ferry, ...peer].reduce((a, s) => a + s.latency.errors + s.load.errors, 0);
  console.log(
    `Ferry vs BentoML (peer) — MLP ${inputDim}→${hiddenDims.join('→')}→${outputDim} (${(bytes.length / 1e6).toFixed(2)} MB), batch-1 JSON requests, onnxruntime with 1 intra-op thread, one worker each${batching ? ', batching on both (Ferry maxBatchSize 32 delay 0; BentoML batchable, max_batch_size 32)' : ', no batching'}`,
  );
  console.log(machineLine());
  console.log(`${runs} round(s), wrk ${seconds}s per figure; median (min–max) over rounds; load errors: ${errors}`);
  console.log('');
  console.log(
    `  ${''.padEnd(28)} ${'p50 (1 connection)'.padEnd(24)} ${'p99 (1 connection)'.padEnd(24)} req/s (${connections} connections)`,
  );
  for (const [label, s] of [
    ['Ferry', ferry],
    ['BentoML + onnxruntime', peer],
  ] as const) {
    console.log(
      `  ${label.padEnd(28)} ${spread(
        s.map((x) => x.latency.p50Ms),
        3,
        ' ms',
      ).padEnd(24)} ${spread(
        s.map((x) => x.latency.p99Ms),
        3,
        ' ms',
      ).padEnd(24)} ${spread(
        s.map((x) => x.load.requestsPerSecond),
        0,
      )}`,
    );
  }
  const p50Ratio = ferry.map((f, i) => f.latency.p50Ms / peer[i].latency.p50Ms);
  const rpsRatio = ferry.map((f, i) => f.load.requestsPerSecond / peer[i].load.requestsPerSecond);
  console.log(`  latency ratio Ferry/peer (p50, lower is better): ${spread(p50Ratio, 2, 'x')}`);
  console.log(`  throughput ratio Ferry/peer (higher is better):  ${spread(rpsRatio, 2, 'x')}`);
  console.log(
    `  p99 under load: Ferry ${spread(
      ferry.map((x) => x.load.p99Ms),
      2,
      ' ms',
    )}, peer ${spread(
      peer.map((x) => x.load.p99Ms),
      2,
      ' ms',
    )}`,
  );
  if (median(rpsRatio) < 1) console.log('  note: the peer outran Ferry on throughput here');
}

/** Both servers must compute the same thing before their speeds are compared. */
async function checkSameAnswers(ferryUrl: string, ferryBody: string, peerUrl: string, peerBody: string): Promise<void> {
  const post = async (url: string, body: string) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    if (!res.ok) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
    return res.json() as Promise<any>;
  };
  const f: number[] = (await post(ferryUrl, ferryBody)).outputs[0].data;
  const p: number[] = (await post(peerUrl, peerBody)).flat();
  if (f.length !== p.length || f.some((v, i) => Math.abs(v - p[i]) > 1e-4 * (1 + Math.abs(v)))) {
    throw new Error(
      `Ferry and the peer disagree: ${JSON.stringify(f.slice(0, 5))} vs ${JSON.stringify(p.slice(0, 5))}`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
