/**
 * Raising a model's default-domain opset (e.g. 9 → 13, so that QuantizeLinear and per-axis
 * DequantizeLinear may be used) without changing what the model computes.
 *
 * An opset bump is only safe when every op of the model means the same at the new version. Between 7 and 13
 * most ops only gained types or negative axes; a few moved attributes to inputs (Slice 10, TopK 10, Clip 11,
 * Pad 11, Squeeze/Unsqueeze/ReduceSum/Split 13), Dropout's ratio became an input (12), and Softmax/LogSoftmax/
 * Hardmax changed meaning at 13 (one axis instead of "flatten to 2-D at axis"). Those are rewritten here;
 * ops whose meaning changed in ways a rewrite cannot keep (Upsample, Scatter, Resize before 11, Scan before 9)
 * and ops Ferry's table does not know make the upgrade refuse with a reason naming the op.
 * Nested graphs (If/Loop/Scan bodies) are upgraded too; functions defined in the model are left alone
 * (they carry their own opset imports).
 */
import { attr, irVersionForOpset, makeNode } from './builders';
import { findAttribute, floatAttribute, forEachGraph, intAttribute, isDefaultDomain } from './graph';
import { defaultOpsetVersion } from './graphRewrite';
import type { AttributeProto, Int64, NodeProto, OnnxModel, TensorProto } from './model';
import { inferShapes } from './shapeInference';
import { float32Tensor, int64Tensor } from './tensor';

/** Oldest source opset the upgrader handles (before 7, Add/Mul/... had a `broadcast` attribute and BatchNorm `is_test`). */
export const OLDEST_UPGRADABLE_OPSET = 7;
/** Newest target opset the upgrade table covers. */
export const NEWEST_UPGRADE_TARGET = 13;

/** Standard ops (since version ≤ 13) whose meaning is unchanged from opset 7 to 13, apart from the rewrites below. */
const STABLE_OPS = new Set(
  (
    'Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization BitShift Cast Ceil Celu ' +
    'Clip Compress Concat ConcatFromSequence Constant ConstantOfShape Conv ConvInteger ConvTranspose Cos Cosh CumSum ' +
    'DepthToSpace DequantizeLinear Det Div Dropout DynamicQuantizeLinear Einsum Elu Equal Erf Exp Expand EyeLike Flatten ' +
    'Floor GRU Gather GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual ' +
    'HardSigmoid Hardmax Identity If InstanceNormalization IsInf IsNaN LRN LSTM LeakyRelu Less LessOrEqual Log ' +
    'LogSoftmax Loop LpNormalization LpPool MatMul MatMulInteger Max MaxPool MaxRoiPool MaxUnpool Mean ' +
    'MeanVarianceNormalization Min Mod Mul Multinomial Neg NonMaxSuppression NonZero Not OneHot Or PRelu Pad Pow ' +
    'QLinearConv QLinearMatMul QuantizeLinear RNN RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range ' +
    'Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ' +
    'ReduceSumSquare Relu Reshape ReverseSequence RoiAlign Round Scan ScatterElements ScatterND Selu SequenceAt ' +
    'SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength Shape Shrink Sigmoid Sign Sin Sinh Size ' +
    'Slice Softmax Softplus Softsign SpaceToDepth Split SplitToSequence Sqrt Squeeze StringNormalizer Sub Sum Tan Tanh ' +
    'TfIdfVectorizer ThresholdedRelu Tile TopK Transpose Unique Unsqueeze Where Xor'
  ).split(' '),
);

/** Ops that cannot be carried across a version where their meaning changed: [op, first version that breaks it, why]. */
const BREAKING: Array<[string, number, string]> = [
  ['Upsample', 10, 'Upsample was deprecated at opset 10 (Resize replaces it, with different coordinate rules)'],
  ['Scatter', 11, 'Scatter was deprecated at opset 11 (ScatterElements replaces it)'],
  ['Resize', 11, 'Resize changed its coordinate transformation and inputs at opset 11'],
  ['Scan', 9, 'Scan dropped its batch axis at opset 9'],
];

export type OpsetUpgradeResult =
  | { ok: true; from: number; to: number; changes: string[] }
  | { ok: false; reason: string };

function intsOf(node: NodeProto, name: string): Int64[] | undefined {
  return findAttribute(node, name)?.ints;
}

function dropAttributes(node: NodeProto, names: string[]): void {
  node.attribute = (node.attribute ?? []).filter((a) => !names.includes(a.name ?? ''));
}

function label(node: NodeProto): string {
  return node.name ? `'${node.name}' (${node.op_type})` : `a ${node.op_type} node`;
}

/**
 * Checks, without changing anything, whether every default-domain op of every graph can move from the
 * model's opset to `target`. Returns the reason for the first op that cannot.
 */
export function opsetUpgradeBlocker(model: OnnxModel, target: number): string | undefined {
  const from = defaultOpsetVersion(model);
  if (from >= target) return undefined;
  if (from === 0) return 'the model imports no default-domain opset';
  if (from < OLDEST_UPGRADABLE_OPSET)
    return `the model's opset ${from} is older than ${OLDEST_UPGRADABLE_OPSET}, the oldest Ferry can upgrade`;
  if (target > NEWEST_UPGRADE_TARGET)
    return `Ferry's upgrade table covers opsets up to ${NEWEST_UPGRADE_TARGET}, not ${target}`;
  let blocker: string | undefined;
  forEachGraph(model.graph ?? {}, (g) => {
    for (const node of g.node ?? []) {
      if (blocker || !isDefaultDomain(node.domain)) continue;
      const op = node.op_type ?? '';
      const breaking = BREAKING.find(([name, version]) => name === op && from < version && target >= version);
      if (breaking) blocker = `${label(node)}: ${breaking[2]}`;
      else if (!STABLE_OPS.has(op)) blocker = `${label(node)}: op ${op} is not in Ferry's opset upgrade table`;
      else if (op === 'BatchNormalization' && from < 9 && target >= 9 && intAttribute(node, 'spatial', 1) !== 1) {
        blocker = `${label(node)}: BatchNormalization with spatial=0 has no equivalent from opset 9`;
      } else if ((op === 'Clip' || op === 'Pad') && from < 11 && target >= 11 && node.input?.length !== 1) {
        blocker = `${label(node)}: unexpected inputs for ${op} before opset 11`;
      }
    }
  });
  return blocker;
}

/**
 * Raises the model's default-domain opset to `target` in place (the caller passes a copy it owns), rewriting
 * the ops whose signature changed. Also raises ir_version to what that opset needs. On `ok: false` the model
 * is unchanged.
 */
export function upgradeDefaultOpset(model: OnnxModel, target: number): OpsetUpgradeResult {
  const from = defaultOpsetVersion(model);
  if (from >= target) return { ok: true, from, to: from, changes: [] };
  const blocker = opsetUpgradeBlocker(model, target);
  if (blocker) return { ok: false, reason: `cannot raise the opset from ${from} to ${target}: ${blocker}` };

  const taken = new Set<string>();
  forEachGraph(model.graph ?? {}, (g) => {
    for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.value_info ?? [])]) if (v.name) taken.add(v.name);
    for (const t of g.initializer ?? []) if (t.name) taken.add(t.name);
    for (const n of g.node ?? [])
      for (const x of [...(n.input ?? []), ...(n.output ?? []), n.name ?? '']) if (x) taken.add(x);
  });
  const fresh = (base: string): string => {
    let name = base;
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };
  const changes: string[] = [];
  const crosses = (version: number) => from < version && target >= version;

  forEachGraph(model.graph ?? {}, (g) => {
    const shapes = crosses(13) ? inferShapes(g) : undefined;
    const out: NodeProto[] = [];
    const constant = (base: string, tensor: TensorProto): string => {
      const name = fresh(base);
      out.push(
        makeNode('Constant', [], [name], {
          name: fresh(`${name}_constant`),
          attributes: [attr.tensor('value', { ...tensor, name })],
        }),
      );
      return name;
    };
    const int64Input = (node: NodeProto, what: string, values: Int64[]): string =>
      constant(`${node.name || node.output?.[0] || node.op_type}_${what}`, int64Tensor('', [values.length], values));

    for (const node of g.node ?? []) {
      if (!isDefaultDomain(node.domain)) {
        out.push(node);
        continue;
      }
      const op = node.op_type;
      if (op === 'Slice' && crosses(10)) {
        const starts = intsOf(node, 'starts') ?? [];
        const ends = intsOf(node, 'ends') ?? [];
        const axes = intsOf(node, 'axes');
        const inputs = [node.input?.[0] ?? '', int64Input(node, 'starts', starts), int64Input(node, 'ends', ends)];
        if (axes) inputs.push(int64Input(node, 'axes', axes));
        node.input = inputs;
        dropAttributes(node, ['starts', 'ends', 'axes']);
        changes.push(`${label(node)}: starts/ends/axes attributes became inputs (opset 10)`);
      } else if (op === 'TopK' && crosses(10)) {
        const k = findAttribute(node, 'k')?.i ?? 1;
        node.input = [node.input?.[0] ?? '', int64Input(node, 'k', [k])];
        dropAttributes(node, ['k']);
        changes.push(`${label(node)}: k attribute became an input (opset 10)`);
      } else if (op === 'Clip' && crosses(11)) {
        const min = findAttribute(node, 'min')?.f;
        const max = findAttribute(node, 'max')?.f;
        const base = node.name || node.output?.[0] || 'clip';
        // Clip before 11 only took float tensors; the bounds become float32 scalars (float32 is what models use).
        node.input = [
          node.input?.[0] ?? '',
          min !== undefined ? constant(`${base}_min`, float32Tensor('', [], [min])) : '',
          max !== undefined ? constant(`${base}_max`, float32Tensor('', [], [max])) : '',
        ];
        while (node.input.length > 1 && node.input[node.input.length - 1] === '') node.input.pop();
        dropAttributes(node, ['min', 'max']);
        changes.push(`${label(node)}: min/max attributes became inputs (opset 11)`);
      } else if (op === 'Pad' && crosses(11)) {
        const pads = intsOf(node, 'pads') ?? [];
        const value = floatAttribute(node, 'value', 0);
        const base = node.name || node.output?.[0] || 'pad';
        node.input = [node.input?.[0] ?? '', int64Input(node, 'pads', pads)];
        if (value !== 0) node.input.push(constant(`${base}_value`, float32Tensor('', [], [value])));
        dropAttributes(node, ['pads', 'value']);
        changes.push(`${label(node)}: pads/value attributes became inputs (opset 11)`);
      } else if (op === 'Dropout' && crosses(12)) {
        // From 12 the ratio is an input that only matters in training mode; inference is the identity either way.
        if (findAttribute(node, 'ratio'))
          changes.push(`${label(node)}: ratio attribute dropped (opset 12; inference ignores it)`);
        dropAttributes(node, ['ratio', 'is_test']);
      } else if ((op === 'Squeeze' || op === 'Unsqueeze' || op === 'ReduceSum') && crosses(13)) {
        const axes = intsOf(node, 'axes');
        if (axes) {
          node.input = [node.input?.[0] ?? '', int64Input(node, 'axes', axes)];
          dropAttributes(node, ['axes']);
          changes.push(`${label(node)}: axes attribute became an input (opset 13)`);
        }
      } else if (op === 'Split' && crosses(13)) {
        const split = intsOf(node, 'split');
        if (split) {
          node.input = [node.input?.[0] ?? '', int64Input(node, 'split', split)];
          dropAttributes(node, ['split']);
          changes.push(`${label(node)}: split attribute became an input (opset 13)`);
        }
      } else if ((op === 'Softmax' || op === 'LogSoftmax' || op === 'Hardmax') && crosses(13)) {
        // Before 13: flatten to 2-D at `axis` (default 1), normalize each row. From 13: normalize along `axis` only.
        const axis = intAttribute(node, 'axis', 1);
        const rank = shapes?.get(node.input?.[0] ?? '')?.length;
        const normalized = rank !== undefined && axis < 0 ? axis + rank : axis;
        if (rank !== undefined && normalized === rank - 1) {
          node.attribute = [...(node.attribute ?? []).filter((a) => a.name !== 'axis'), attr.int('axis', normalized)];
          changes.push(`${label(node)}: axis ${normalized} is the last axis, same meaning at opset 13`);
        } else {
          const x = node.input?.[0] ?? '';
          const y = node.output?.[0] ?? '';
          const base = node.name || y || op;
          const flat = fresh(`${base}_flat2d`);
          const shape = fresh(`${base}_shape`);
          const normalizedOut = fresh(`${base}_2d`);
          out.push(makeNode('Shape', [x], [shape], { name: fresh(`${base}_Shape`) }));
          out.push(
            makeNode('Flatten', [x], [flat], { name: fresh(`${base}_Flatten`), attributes: [attr.int('axis', axis)] }),
          );
          node.input = [flat];
          node.output = [normalizedOut];
          node.attribute = [
            ...(node.attribute ?? []).filter((a: AttributeProto) => a.name !== 'axis'),
            attr.int('axis', 1),
          ];
          out.push(node);
          out.push(makeNode('Reshape', [normalizedOut, shape], [y], { name: fresh(`${base}_Reshape`) }));
          changes.push(
            `${label(node)}: wrapped in Flatten/Reshape to keep its pre-13 meaning (axis ${axis}, input rank ${rank ?? 'unknown'})`,
          );
          continue;
        }
      } else if (op === 'BatchNormalization' && crosses(9)) {
        dropAttributes(node, ['spatial']);
      }
      out.push(node);
    }
    g.node = out;
    // value_info entries describe the old graph's values; the rewrites above keep every old value's type and shape.
  });

  const imp = (model.opset_import ?? []).find((o) => isDefaultDomain(o.domain));
  if (imp) imp.version = target;
  const neededIr = irVersionForOpset(target);
  const oldIr = Number(model.ir_version ?? 0);
  if (oldIr < neededIr) {
    changes.push(`ir_version ${oldIr} → ${neededIr}`);
    model.ir_version = neededIr;
    if (oldIr < 4 && model.graph) {
      // Before IR 4 every initializer was also a graph input, and still a constant; from IR 4 such an input
      // would be a caller-overridable default. Keep them constants.
      const inits = new Set((model.graph.initializer ?? []).map((t) => t.name));
      const before = model.graph.input?.length ?? 0;
      model.graph.input = (model.graph.input ?? []).filter((v) => !inits.has(v.name));
      if (model.graph.input.length !== before)
        changes.push(`${before - model.graph.input.length} initializers no longer listed as graph inputs (IR 4 rule)`);
    }
  }
  return { ok: true, from, to: target, changes };
}
