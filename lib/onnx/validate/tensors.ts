/** Stored tensors: a real data type, sane dims whose product fits, and exactly the bytes dims and type call for. */
import type { TensorProto } from '../model';
import { bitsPerElement, dataTypeName, isExternal, rawByteLength, TensorDataType } from '../tensor';
import { ModelValidationError } from './errors';
import { checkExternalEntries } from './externalData';
import type { TensorByteRange } from './wireSkeleton';

/** Which typed field holds a tensor's values when raw_data is not used. */
function typedField(dataType: number): { field: keyof TensorProto; perElement: number } {
  switch (dataType) {
    case TensorDataType.FLOAT:
      return { field: 'float_data', perElement: 1 };
    case TensorDataType.COMPLEX64:
      return { field: 'float_data', perElement: 2 };
    case TensorDataType.DOUBLE:
      return { field: 'double_data', perElement: 1 };
    case TensorDataType.COMPLEX128:
      return { field: 'double_data', perElement: 2 };
    case TensorDataType.INT64:
      return { field: 'int64_data', perElement: 1 };
    case TensorDataType.UINT32:
    case TensorDataType.UINT64:
      return { field: 'uint64_data', perElement: 1 };
    case TensorDataType.STRING:
      return { field: 'string_data', perElement: 1 };
    default:
      return { field: 'int32_data', perElement: 1 }; // int8/16/32, uint8/16, bool, 16- and 8-bit floats, sub-byte types
  }
}

/** Entry counts a typed field may hold for `count` elements. Sub-byte types are packed by most writers, not all. */
function acceptedEntryCounts(dataType: number, count: number, perElement: number): number[] {
  const bits = bitsPerElement(dataType);
  if (bits !== undefined && bits < 8) return [count, Math.ceil((count * bits) / 8), Math.ceil((count * bits) / 32)];
  return [count * perElement];
}

const VALUE_FIELDS = ['float_data', 'int32_data', 'string_data', 'int64_data', 'double_data', 'uint64_data'] as const;

/** What a tensor check learns beyond "it is fine": the external data it points at, if any. */
export interface ExternalReference {
  location: string;
  offset: number;
  /** Declared length, else the length dims and type call for. */
  length: number;
  what: string;
}

const INT64_MAX = 2n ** 63n - 1n;

/**
 * Checks one stored tensor. `rawDataBytes` is the size of its raw_data when the walk left the payload in the
 * file. Returns where its external data is, for tensors kept outside the model file.
 */
export function checkTensor(t: TensorProto, what: string, stripped?: TensorByteRange): ExternalReference | undefined {
  const dt = t.data_type ?? TensorDataType.UNDEFINED;
  if (TensorDataType[dt] === undefined || dt === TensorDataType.UNDEFINED) {
    throw new ModelValidationError(
      'bad-data-type',
      `${what} has data type ${dt}, which is not an ONNX tensor data type`,
    );
  }
  const dims = t.dims ?? [];
  const dimList = `dims [${dims.join(', ')}]`;
  for (const d of dims) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new ModelValidationError(
        'initializer-size-mismatch',
        `${what} has an invalid dimension ${d} in ${dimList}`,
      );
    }
  }
  const count = checkedElementCount(dims, `${what} has ${dimList}`);
  const byteLength = rawByteLength(dt, count);
  if (byteLength !== undefined && !Number.isSafeInteger(byteLength)) {
    throw new ModelValidationError('dimension-overflow', `${what} has ${dimList}: its data would not fit in memory`);
  }
  const shape = `${dimList} (${count} ${dataTypeName(dt)} elements)`;

  if (isExternal(t)) {
    const entries = checkExternalEntries(t, what);
    const length = entries.length ?? byteLength ?? 0;
    if (entries.length !== undefined && byteLength !== undefined && entries.length !== byteLength) {
      throw new ModelValidationError(
        'initializer-size-mismatch',
        `${what} has ${shape}, which take ${byteLength} bytes, but its external data length is ${entries.length} bytes`,
      );
    }
    return { location: entries.location, offset: entries.offset ?? 0, length, what };
  }
  if (t.segment) return undefined; // a chunk of a larger tensor: its size is the segment's, not the dims'

  const rawLength = stripped?.length ?? t.raw_data?.length ?? 0;
  if (rawLength > 0) {
    if (byteLength === undefined) {
      throw new ModelValidationError(
        'initializer-size-mismatch',
        `${what} is a ${dataTypeName(dt)} tensor stored in raw_data, which only fixed-width types may use`,
      );
    }
    if (rawLength !== byteLength) {
      throw new ModelValidationError(
        'initializer-size-mismatch',
        `${what} has ${shape}, which take ${byteLength} bytes, but its raw_data holds ${rawLength} bytes`,
      );
    }
    return undefined;
  }
  const spec = typedField(dt);
  const actual = (t[spec.field] as unknown[] | undefined)?.length ?? 0;
  const accepted = acceptedEntryCounts(dt, count, spec.perElement);
  if (!accepted.includes(actual)) {
    const elsewhere = VALUE_FIELDS.find((f) => f !== spec.field && ((t[f] as unknown[] | undefined)?.length ?? 0) > 0);
    throw new ModelValidationError(
      'initializer-size-mismatch',
      `${what} has ${shape}, but ` +
        (actual === 0 && elsewhere
          ? `its values are in ${elsewhere}, and a ${dataTypeName(dt)} tensor keeps them in ${String(spec.field)} or raw_data`
          : `${String(spec.field)} holds ${actual} entries (expected ${accepted[0]})`),
    );
  }
  return undefined;
}

/**
 * The product of `dims`, refused when it overflows int64 (what onnxruntime computes sizes in) or cannot be
 * held exactly as a number. A zero anywhere makes the product 0 whatever the other dims are.
 */
export function checkedElementCount(dims: readonly number[], subject: string): number {
  let product = 1n;
  for (const d of dims) product *= BigInt(d);
  if (product > INT64_MAX) {
    throw new ModelValidationError(
      'dimension-overflow',
      `${subject}: their product ${product} overflows a 64-bit element count`,
    );
  }
  if (product > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ModelValidationError('dimension-overflow', `${subject}: their product ${product} is too many elements`);
  }
  return Number(product);
}
