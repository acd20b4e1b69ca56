/** Options of dynamic INT8 quantization: what a caller may set, their defaults, and reading them from a plan. */
import { booleanOption, excludeNodesOption, nonNegativeOption, opTypesOption, type RawOptions } from '../adapter';

export interface Int8DynamicOptions {
  /** Weights with fewer elements stay float32: too small to matter for size or speed (default 1024). */
  minElements?: number;
  /** One scale per output channel (default true); false: one scale per weight. */
  perChannel?: boolean;
  /**
   * 7-bit weights (−63..63) instead of 8-bit. Only for CPUs without VNNI, whose u8×s8 instructions can
   * saturate int16 intermediate sums; default false.
   */
  reduceRange?: boolean;
  /** Fold `MatMul → Add(constant bias)` into the kernel's bias input (default true). */
  fuseBias?: boolean;
  /**
   * When several quantized nodes read the same activation (Q, K and V projections), quantize it once with
   * DynamicQuantizeLinear and run each node as MatMulIntegerToFloat (default true).
   */
  shareActivationQuantization?: boolean;
  /** Which ops to quantize (default both). */
  opTypes?: Array<'MatMul' | 'Gemm'>;
  /** Node names to leave in float32. */
  excludeNodes?: string[];
}

export function resolveOptions(options: Int8DynamicOptions): Required<Int8DynamicOptions> {
  return {
    minElements: options.minElements ?? 1024,
    perChannel: options.perChannel ?? true,
    reduceRange: options.reduceRange ?? false,
    fuseBias: options.fuseBias ?? true,
    shareActivationQuantization: options.shareActivationQuantization ?? true,
    opTypes: options.opTypes ?? ['MatMul', 'Gemm'],
    excludeNodes: options.excludeNodes ?? [],
  };
}

/** The technique's options from a plan; throws what is wrong with them. */
export function readOptions(raw: RawOptions | undefined): Int8DynamicOptions {
  const o = raw ?? {};
  const out: Int8DynamicOptions = {};
  out.minElements = nonNegativeOption(o, 'minElements');
  out.perChannel = booleanOption(o, 'perChannel');
  out.reduceRange = booleanOption(o, 'reduceRange');
  out.fuseBias = booleanOption(o, 'fuseBias');
  const opTypes = opTypesOption(o, ['MatMul', 'Gemm'] as const, "option opTypes must list 'MatMul' and/or 'Gemm'");
  if (opTypes) out.opTypes = opTypes;
  const excludeNodes = excludeNodesOption(o);
  if (excludeNodes) out.excludeNodes = excludeNodes;
  return out;
}
