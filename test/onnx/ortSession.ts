/** Runs models in the real onnxruntime-node, for tests that compare what a model computes. */
import * as ort from 'onnxruntime-node';

ort.env.logLevel = 'error';

export async function runModel(
  bytes: Uint8Array,
  feeds: Record<string, ort.Tensor>,
): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

export function float32Input(data: Float32Array, dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}

export { ort };
