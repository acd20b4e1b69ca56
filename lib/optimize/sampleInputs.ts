/** Deterministic inputs for a model from its input specs, so two models are compared on the same data. */
import * as ort from 'onnxruntime-node';
import type { TensorSpec } from '../../workflows/types';

export function concreteShape(spec: TensorSpec, batchSize: number): number[] {
  return spec.shape.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? batchSize : 1));
}

/** Mulberry32: a tiny seeded PRNG; the same seed gives the same inputs on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function sampleInputs(specs: TensorSpec[], batchSize = 1, seed = 42): Record<string, ort.Tensor> {
  const rand = seededRandom(seed);
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of specs) {
    const shape = concreteShape(spec, batchSize);
    const n = shape.reduce((a, b) => a * b, 1);
    switch (spec.dataType) {
      case 'FP32':
        feeds[spec.name] = new ort.Tensor('float32', Float32Array.from({ length: n }, () => rand() * 2 - 1), shape);
        break;
      case 'FP64':
        feeds[spec.name] = new ort.Tensor('float64', Float64Array.from({ length: n }, () => rand() * 2 - 1), shape);
        break;
      case 'INT64':
        feeds[spec.name] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * 4))), shape);
        break;
      case 'INT32':
        feeds[spec.name] = new ort.Tensor('int32', Int32Array.from({ length: n }, () => Math.floor(rand() * 4)), shape);
        break;
      case 'BOOL':
        feeds[spec.name] = new ort.Tensor('bool', Uint8Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0)), shape);
        break;
      default:
        throw new Error(`cannot generate sample data for input "${spec.name}" of type ${spec.dataType}`);
    }
  }
  return feeds;
}
