/**
 * Does a row's answer depend on the other rows of its batch? Dynamic batching merges independent
 * requests along the first dimension, which is only right when the model treats rows independently: a
 * dynamic first dimension does not prove it (a model over [sequence, hidden] mixes its rows, dynamic int8
 * quantization takes one scale for the whole batch). So the measuring child runs a few rows of the large
 * batch alone and compares their outputs with the same rows of the batched run; the engine then decides
 * (servingBatching.ts).
 */
import * as ort from 'onnxruntime-node';
import { signatureOf, whyNotBatchable } from '../../runtime/server/modelRepository';
import { ElementAgreement } from './agreement';

export interface RowIndependence {
  /** Rows run alone and compared. */
  rows: number;
  /** Largest |alone − in batch| over every compared output element. */
  maxAbsDiff: number;
  /** Largest |in batch| over the same elements: the scale maxAbsDiff is read against. */
  maxAbsRef: number;
  /** Lowest cosine similarity between a row alone and in the batch, over rows and outputs. */
  minCosine: number;
  /** Set when the outputs cannot be split into rows at all (then nothing else is meaningful). */
  notRowShaped?: string;
}

type Numeric = Exclude<ort.Tensor['data'], string[]>;

/** Which rows to compare: first, middle, last (distinct). */
export function rowsToCompare(batch: number): number[] {
  return [...new Set([0, Math.floor(batch / 2), batch - 1])].filter((r) => r >= 0 && r < batch);
}

/** Row `row` of every input whose first dimension is the batch; other inputs (scalars, fixed) as they are. */
export function sliceFeedRow(
  feeds: Record<string, ort.Tensor>,
  batch: number,
  row: number,
): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    if (t.dims.length === 0 || t.dims[0] !== batch) {
      out[name] = t;
      continue;
    }
    const rowSize = t.size / batch;
    const data = t.data;
    const part = Array.isArray(data)
      ? data.slice(row * rowSize, (row + 1) * rowSize)
      : (data as Numeric).slice(row * rowSize, (row + 1) * rowSize);
    out[name] = new ort.Tensor(t.type as 'float32', part as Float32Array, [1, ...t.dims.slice(1)]);
  }
  return out;
}

/** Runs `rowsToCompare` rows alone and compares them with `batched` (the outputs of `feeds` run as one batch). */
export async function measureRowIndependence(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  batch: number,
  batched: ort.InferenceSession.OnnxValueMapType,
): Promise<RowIndependence> {
  const result: RowIndependence = { rows: 0, maxAbsDiff: 0, maxAbsRef: 0, minCosine: 1 };
  // The server refuses to batch a model whose declared shapes lack a batch dimension: the same rule here.
  const declared = whyNotBatchable(session.inputMetadata.map(signatureOf), session.outputMetadata.map(signatureOf));
  if (declared) return { ...result, notRowShaped: `the server cannot batch it: ${declared}` };
  const numericOutputs = Object.entries(batched).filter(
    ([, v]) => v instanceof ort.Tensor && v.type !== 'string',
  ) as Array<[string, ort.Tensor]>;
  for (const [name, t] of numericOutputs) {
    if (t.dims.length === 0 || t.dims[0] !== batch) {
      return {
        ...result,
        notRowShaped: `output "${name}" has shape [${t.dims.join(',')}] for a batch of ${batch}, so its first dimension is not the batch`,
      };
    }
  }
  for (const row of rowsToCompare(batch)) {
    const alone = await session.run(sliceFeedRow(feeds, batch, row));
    for (const [name, t] of numericOutputs) {
      const rowSize = t.size / batch;
      const inBatch = (t.data as Numeric).subarray(row * rowSize, (row + 1) * rowSize);
      const single = (alone[name] as ort.Tensor).data as Numeric;
      if (single.length !== rowSize) {
        return {
          ...result,
          notRowShaped: `output "${name}" has ${single.length} values for one row alone but ${rowSize} per row in a batch`,
        };
      }
      compareRow(result, inBatch, single);
    }
    result.rows++;
  }
  return result;
}

/** One row alone against the same row in the batch (agreement as defined in agreement.ts); the worst row counts. */
function compareRow(into: RowIndependence, inBatch: Numeric, alone: Numeric): void {
  const row = new ElementAgreement();
  row.add(inBatch, alone);
  into.maxAbsDiff = Number.isNaN(row.maxAbsError) ? Infinity : Math.max(into.maxAbsDiff, row.maxAbsError);
  into.maxAbsRef = Math.max(into.maxAbsRef, row.maxAbsReference);
  if (row.cosine < into.minCosine) into.minCosine = row.cosine;
}
