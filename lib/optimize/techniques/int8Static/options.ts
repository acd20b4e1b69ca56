/** Options of static INT8 quantization: what a caller may set, their defaults, and reading them from a plan. */
import { booleanOption, excludeNodesOption, opTypesOption, type RawOptions } from '../adapter';
import { CALIBRATION_METHODS, type CalibrationMethod, type GeneratedCalibrationOptions } from '../calibration';
import type { ActivationType } from '../quantization';

export type QuantizableOp = 'Conv' | 'MatMul' | 'Gemm';
export const QUANTIZABLE_OPS: readonly QuantizableOp[] = ['Conv', 'MatMul', 'Gemm'];

export interface Int8StaticOptions {
  /** How activation ranges are derived from the calibration data (default 'minmax'). */
  calibrationMethod?: CalibrationMethod;
  /** For 'percentile': the share of values kept, in percent (default 99.99). */
  percentile?: number;
  /** Activation type (default 'uint8'); weights are always int8. */
  activationType?: ActivationType;
  /** One weight scale per output channel (default true; needs opset 13). */
  perChannel?: boolean;
  /** 7-bit weights, for CPUs without VNNI whose u8×s8 instructions can saturate (default false). */
  reduceRange?: boolean;
  opTypes?: QuantizableOp[];
  /** Node names to keep in float32. */
  excludeNodes?: string[];
  /** Fold a Relu that alone reads a quantized output into its QuantizeLinear (default true). */
  foldRelu?: boolean;
  /** Rewrite 2-D MatMul + constant-bias Add as Gemm (default true). */
  matMulAddToGemm?: boolean;
  /**
   * Quantize Add nodes fed by a quantized tensor (bias and residual Adds after a quantized MatMul or Conv) so
   * that onnxruntime runs them as QLinearAdd and the tensors stay 8-bit between integer kernels (default true).
   */
  quantizeAdd?: boolean;
  /** Shape of generated calibration data when the caller supplies none. */
  generated?: GeneratedCalibrationOptions;
}

/** The options with every default filled in. */
export type Resolved = Required<Omit<Int8StaticOptions, 'generated'>> & { generated: GeneratedCalibrationOptions };

export function resolveOptions(o: Int8StaticOptions): Resolved {
  return {
    calibrationMethod: o.calibrationMethod ?? 'minmax',
    percentile: o.percentile ?? 99.99,
    activationType: o.activationType ?? 'uint8',
    perChannel: o.perChannel ?? true,
    reduceRange: o.reduceRange ?? false,
    opTypes: o.opTypes ?? [...QUANTIZABLE_OPS],
    excludeNodes: o.excludeNodes ?? [],
    foldRelu: o.foldRelu ?? true,
    matMulAddToGemm: o.matMulAddToGemm ?? true,
    quantizeAdd: o.quantizeAdd ?? true,
    generated: o.generated ?? {},
  };
}

/** The technique's options from a plan; throws what is wrong with them. */
export function readOptions(raw: RawOptions | undefined): Int8StaticOptions {
  const o = raw ?? {};
  const out: Int8StaticOptions = {};
  if (o.calibrationMethod !== undefined) {
    if (!CALIBRATION_METHODS.includes(o.calibrationMethod as CalibrationMethod)) {
      throw new Error(
        `option calibrationMethod must be one of ${CALIBRATION_METHODS.join(', ')}, got ${JSON.stringify(o.calibrationMethod)}`,
      );
    }
    out.calibrationMethod = o.calibrationMethod as CalibrationMethod;
  }
  if (o.percentile !== undefined) {
    if (typeof o.percentile !== 'number' || !(o.percentile > 50 && o.percentile <= 100))
      throw new Error('option percentile must be a number in (50, 100]');
    out.percentile = o.percentile;
  }
  if (o.activationType !== undefined) {
    if (o.activationType !== 'uint8' && o.activationType !== 'int8')
      throw new Error("option activationType must be 'uint8' or 'int8'");
    out.activationType = o.activationType;
  }
  for (const k of ['perChannel', 'reduceRange', 'foldRelu', 'matMulAddToGemm', 'quantizeAdd'] as const) {
    const v = booleanOption(o, k);
    if (v !== undefined) out[k] = v;
  }
  const opTypes = opTypesOption(o, QUANTIZABLE_OPS, 'option opTypes must list Conv, MatMul and/or Gemm');
  if (opTypes) out.opTypes = opTypes;
  const excludeNodes = excludeNodesOption(o);
  if (excludeNodes) out.excludeNodes = excludeNodes;
  if (o.generated !== undefined) out.generated = o.generated as GeneratedCalibrationOptions;
  return out;
}
