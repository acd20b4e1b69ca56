/**
 * What a validated model needs from a runtime: the operator sets it imports, the operators it uses (per
 * domain), domains beyond the ONNX standard, the oldest onnxruntime release that implements its opsets and
 * IR version, dynamic dimensions, and external files. Stored with the model version and shown by
 * `ferry models show`.
 *
 * Which operators each execution provider (CPU, CUDA, TensorRT, CoreML) lacks is not in this report: it
 * needs onnxruntime's per-provider kernel tables, which are not tabulated here yet.
 */
import type { ModelAnalysis } from '../analyze';
import { forEachNode, normalizeDomain } from '../graph';
import type { OnnxModel } from '../model';
import { MAX_IR_VERSION, MAX_OPSET_BY_DOMAIN } from '../runtimeSupport';
import type { ExternalFile } from './externalData';

/** The onnxruntime-node release Ferry bundles; runtimeSupport.ts holds its measured bounds. */
export const BUNDLED_ONNXRUNTIME = '1.30.0';

/**
 * onnxruntime releases with the newest ONNX opset, ONNX-ML opset and IR version each implements, from
 * onnxruntime's published version matrix (rows through 1.10), and the bundled release as measured.
 */
export const ONNXRUNTIME_RELEASES: ReadonlyArray<{ version: string; opset: number; mlOpset: number; ir: number }> = [
  { version: '0.1.4', opset: 8, mlOpset: 1, ir: 3 },
  { version: '0.3.0', opset: 9, mlOpset: 1, ir: 3 },
  { version: '0.4.0', opset: 10, mlOpset: 1, ir: 5 },
  { version: '1.0.0', opset: 11, mlOpset: 2, ir: 6 },
  { version: '1.3.0', opset: 12, mlOpset: 2, ir: 6 },
  { version: '1.6.0', opset: 13, mlOpset: 2, ir: 7 },
  { version: '1.8.0', opset: 14, mlOpset: 2, ir: 7 },
  { version: '1.9.0', opset: 15, mlOpset: 2, ir: 7 },
  {
    version: BUNDLED_ONNXRUNTIME,
    opset: MAX_OPSET_BY_DOMAIN['ai.onnx'],
    mlOpset: MAX_OPSET_BY_DOMAIN['ai.onnx.ml'],
    ir: MAX_IR_VERSION,
  },
];

export interface MinimumRuntime {
  /** The oldest listed release that implements the model's opsets and IR version. */
  version: string;
  /** True when the model needs more than the last published row: some release after it and up to `version`. */
  upperBound: boolean;
}

export interface DependencyReport {
  bundledRuntime: string;
  minimumRuntime: MinimumRuntime;
  opsets: Array<{ domain: string; version: number }>;
  /** Operators by domain: op_type → node count, all graphs. */
  operators: Record<string, Record<string, number>>;
  /** Domains outside the ONNX standard that nodes use (com.microsoft contrib ops, and any other). */
  nonStandardDomains: string[];
  irVersion: number;
  dynamicDims: string[];
  externalFiles: ExternalFile[];
}

export function analyzeDependencies(
  model: OnnxModel,
  analysis: ModelAnalysis,
  externalFiles: ExternalFile[],
): DependencyReport {
  const operators: Record<string, Record<string, number>> = {};
  forEachNode(model.graph ?? {}, (node) => {
    const domain = normalizeDomain(node.domain);
    const ops = operators[domain] ?? {};
    operators[domain] = ops;
    ops[node.op_type ?? ''] = (ops[node.op_type ?? ''] ?? 0) + 1;
  });
  const opsetOf = (domain: string): number => analysis.opsets.find((o) => o.domain === domain)?.version ?? 0;
  return {
    bundledRuntime: BUNDLED_ONNXRUNTIME,
    minimumRuntime: minimumRuntime(opsetOf('ai.onnx'), opsetOf('ai.onnx.ml'), analysis.irVersion),
    opsets: analysis.opsets,
    operators,
    nonStandardDomains: analysis.customDomains,
    irVersion: analysis.irVersion,
    dynamicDims: analysis.dynamicDims,
    externalFiles,
  };
}

export function minimumRuntime(opset: number, mlOpset: number, ir: number): MinimumRuntime {
  const index = ONNXRUNTIME_RELEASES.findIndex((r) => r.opset >= opset && r.mlOpset >= mlOpset && r.ir >= ir);
  const last = ONNXRUNTIME_RELEASES.length - 1;
  const at = index < 0 ? last : index;
  return { version: ONNXRUNTIME_RELEASES[at].version, upperBound: at === last && last > 0 };
}
