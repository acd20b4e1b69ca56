/**
 * A small, forgiving shape propagation for the ops that dominate compute (MatMul, Gemm, Conv) and the
 * ops that usually sit between them. It exists to estimate MACs; it is not onnxruntime's shape inference.
 * A dim is a number (fixed), a string (symbolic) or null (unknown); an unknown shape is simply absent.
 */
import { findAttribute, intAttribute, intsAttribute, isDefaultDomain, stringAttribute } from './graph';
import type { GraphProto, NodeProto, TensorProto, TypeProto } from './model';
import { elementCount, TensorDataType, tensorToBigInt64 } from './tensor';

export type Dim = number | string | null;
export type Shape = Dim[];

export function shapeOfType(type: TypeProto | undefined): Shape | undefined {
  const shape = type?.tensor_type?.shape;
  if (!shape) return undefined;
  return (shape.dim ?? []).map((d) =>
    d.dim_value !== undefined ? Number(d.dim_value) : d.dim_param !== undefined ? d.dim_param : null,
  );
}

const SAME_SHAPE_OPS = new Set([
  'Relu',
  'LeakyRelu',
  'Sigmoid',
  'Tanh',
  'Gelu',
  'Erf',
  'Exp',
  'Log',
  'Sqrt',
  'Neg',
  'Abs',
  'Reciprocal',
  'Softmax',
  'LogSoftmax',
  'Identity',
  'Cast',
  'CastLike',
  'Clip',
  'Dropout',
  'HardSigmoid',
  'HardSwish',
  'Elu',
  'Selu',
  'Softplus',
  'Softsign',
  'Sin',
  'Cos',
  'Floor',
  'Ceil',
  'Round',
  'Not',
  'Sign',
  'BatchNormalization',
  'LayerNormalization',
  'InstanceNormalization',
  'LRN',
  'QuantizeLinear',
  'DequantizeLinear',
  'Mish',
  'ThresholdedRelu',
  'Celu',
]);
const BROADCAST_OPS = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Pow',
  'Max',
  'Min',
  'Sum',
  'Mean',
  'Where',
  'Equal',
  'Less',
  'Greater',
  'LessOrEqual',
  'GreaterOrEqual',
  'And',
  'Or',
  'Xor',
  'PRelu',
  'Mod',
  'BitShift',
]);
const POOL_OPS = new Set(['MaxPool', 'AveragePool', 'LpPool']);
const GLOBAL_POOL_OPS = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']);

function broadcastDim(a: Dim, b: Dim): Dim {
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === b) return a;
  if (typeof a === 'number') return a; // a fixed dim other than 1 wins over a symbolic one
  if (typeof b === 'number') return b;
  return null;
}

export function broadcastShapes(shapes: Shape[]): Shape {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const j = s.length - rank + i;
      if (j >= 0) d = broadcastDim(d, s[j]);
    }
    out.push(d);
  }
  return out;
}

/** Output spatial dims of a sliding window (Conv, pools), per the ONNX formulas incl. auto_pad. */
function windowOutput(node: NodeProto, input: Shape, kernel: number[]): Shape {
  const spatial = input.slice(2);
  const rank = spatial.length;
  const strides = intsAttribute(node, 'strides') ?? new Array(rank).fill(1);
  const dilations = intsAttribute(node, 'dilations') ?? new Array(rank).fill(1);
  const pads = intsAttribute(node, 'pads') ?? new Array(rank * 2).fill(0);
  const autoPad = stringAttribute(node, 'auto_pad') ?? 'NOTSET';
  const ceilMode = intAttribute(node, 'ceil_mode', 0) === 1;
  return spatial.map((d, i) => {
    if (typeof d !== 'number') return null;
    const effectiveKernel = dilations[i] * (kernel[i] - 1) + 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(d / strides[i]);
    const padded = autoPad === 'VALID' ? d : d + pads[i] + pads[i + rank];
    const steps = (padded - effectiveKernel) / strides[i];
    return (ceilMode ? Math.ceil(steps) : Math.floor(steps)) + 1;
  });
}

/** MatMul's output shape with numpy semantics (1-D operands are promoted, then the added dim dropped). */
export function matMulShape(a: Shape, b: Shape): Shape | undefined {
  if (a.length === 0 || b.length === 0) return undefined;
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)]);
  const out: Shape = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]);
  if (b.length > 1) out.push(b2[b2.length - 1]);
  return out;
}

export function gemmDims(node: NodeProto, a: Shape, b: Shape): { m: Dim; k: Dim; n: Dim } | undefined {
  if (a.length !== 2 || b.length !== 2) return undefined;
  const transA = intAttribute(node, 'transA', 0) === 1;
  const transB = intAttribute(node, 'transB', 0) === 1;
  return { m: transA ? a[1] : a[0], k: transA ? a[0] : a[1], n: transB ? b[0] : b[1] };
}

/** Values of small INT64 constants (Reshape's target shape), from initializers and Constant nodes. */
function int64Values(t: TensorProto): number[] | undefined {
  if (t.data_type !== TensorDataType.INT64 || elementCount(t.dims) > 64) return undefined;
  try {
    return Array.from(tensorToBigInt64(t), Number);
  } catch {
    return undefined;
  }
}

function inferNode(
  node: NodeProto,
  shapeOf: (name: string) => Shape | undefined,
  constants: Map<string, number[]>,
): Shape | undefined {
  const op = node.op_type ?? '';
  const inputs = (node.input ?? []).map((n) => (n === '' ? undefined : shapeOf(n)));
  const [x, w] = inputs;
  if (SAME_SHAPE_OPS.has(op)) return x;
  if (BROADCAST_OPS.has(op))
    return inputs.every((s) => s !== undefined) ? broadcastShapes(inputs as Shape[]) : undefined;
  if (!x) return undefined;
  switch (op) {
    case 'MatMul':
      return w ? matMulShape(x, w) : undefined;
    case 'Gemm': {
      const dims = w ? gemmDims(node, x, w) : undefined;
      return dims ? [dims.m, dims.n] : undefined;
    }
    case 'Conv': {
      if (!w || x.length < 3 || w.length !== x.length || !w.slice(2).every((d) => typeof d === 'number'))
        return undefined;
      return [x[0], w[0], ...windowOutput(node, x, w.slice(2) as number[])];
    }
    case 'MaxPool':
    case 'AveragePool':
    case 'LpPool': {
      const kernel = intsAttribute(node, 'kernel_shape');
      return kernel && POOL_OPS.has(op) ? [x[0], x[1], ...windowOutput(node, x, kernel)] : undefined;
    }
    case 'Flatten': {
      let axis = intAttribute(node, 'axis', 1);
      if (axis < 0) axis += x.length;
      // A lone symbolic dim (the batch) stays symbolic; a product involving one is unknown.
      const product = (dims: Shape): Dim =>
        dims.length === 1 ? dims[0] : dims.every((d) => typeof d === 'number') ? elementCount(dims as number[]) : null;
      return [product(x.slice(0, axis)), product(x.slice(axis))];
    }
    case 'Transpose': {
      const perm = intsAttribute(node, 'perm') ?? x.map((_, i) => x.length - 1 - i);
      return perm.map((p) => x[p] ?? null);
    }
    case 'Reshape': {
      const target = constants.get(node.input?.[1] ?? '');
      if (!target) return undefined;
      const out: Shape = target.map((d, i) =>
        d === 0 && intAttribute(node, 'allowzero', 0) === 0 ? (x[i] ?? null) : d === -1 ? null : d,
      );
      const minus = target.indexOf(-1);
      if (
        minus >= 0 &&
        x.every((d) => typeof d === 'number') &&
        out.every((d, i) => i === minus || typeof d === 'number')
      ) {
        const known = elementCount(out.filter((_, i) => i !== minus) as number[]);
        out[minus] = known > 0 ? elementCount(x as number[]) / known : null;
      }
      return out;
    }
    default:
      if (GLOBAL_POOL_OPS.has(op)) return [x[0], x[1], ...x.slice(2).map(() => 1)];
      return undefined;
  }
}

/**
 * A graph's shapes, falling back to the enclosing graph's on lookup: a chain, not a copy of the outer shapes
 * per subgraph, which would cost names × subgraphs (a model with thousands of If nodes took seconds).
 */
class ScopedShapes extends Map<string, Shape> {
  constructor(private readonly outer?: ReadonlyMap<string, Shape>) {
    super();
  }
  override get(name: string): Shape | undefined {
    return super.get(name) ?? this.outer?.get(name);
  }
  override has(name: string): boolean {
    return super.has(name) || (this.outer?.has(name) ?? false);
  }
}

/**
 * Shapes of the tensors of one graph that can be known from declarations and simple propagation.
 * `outer` supplies shapes visible from an enclosing graph.
 */
export function inferShapes(graph: GraphProto, outer?: ReadonlyMap<string, Shape>): Map<string, Shape> {
  const shapes = new ScopedShapes(outer);
  const constants = new Map<string, number[]>();
  for (const vi of [...(graph.input ?? []), ...(graph.value_info ?? []), ...(graph.output ?? [])]) {
    const s = shapeOfType(vi.type);
    if (vi.name && s) shapes.set(vi.name, s);
  }
  for (const init of graph.initializer ?? []) {
    if (!init.name) continue;
    shapes.set(init.name, (init.dims ?? []).map(Number));
    const values = int64Values(init);
    if (values) constants.set(init.name, values);
  }
  const nodes = graph.node ?? [];
  for (const node of nodes) {
    const out = node.output?.[0];
    if (!out) continue;
    if (node.op_type === 'Constant' && isDefaultDomain(node.domain)) {
      const value = findAttribute(node, 'value')?.t;
      if (value) {
        shapes.set(out, (value.dims ?? []).map(Number));
        const values = int64Values(value);
        if (values) constants.set(out, values);
      }
      continue;
    }
    if (shapes.has(out) || !isDefaultDomain(node.domain)) continue;
    const inferred = inferNode(node, (n) => shapes.get(n), constants);
    if (inferred) shapes.set(out, inferred);
  }
  return shapes;
}
