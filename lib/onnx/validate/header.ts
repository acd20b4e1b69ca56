/** IR version and opset imports: what the bundled onnxruntime loads (bounds in runtimeSupport.ts). */
import { normalizeDomain } from '../graph';
import type { GraphProto, OnnxModel } from '../model';
import { MAX_IR_VERSION, MAX_OPSET_BY_DOMAIN, MIN_DEFAULT_OPSET } from '../runtimeSupport';
import { ModelValidationError } from './errors';

export function checkHeader(model: OnnxModel): void {
  const graph = model.graph as GraphProto;
  if ((graph.node?.length ?? 0) === 0 && (graph.output?.length ?? 0) === 0) {
    throw new ModelValidationError(
      'empty-model',
      'the model graph has no nodes and no outputs: there is nothing to run',
    );
  }
  const ir = model.ir_version;
  if (ir === undefined) {
    throw new ModelValidationError(
      'unsupported-ir-version',
      'the model has no ir_version; every ONNX model must declare one',
    );
  }
  if (typeof ir !== 'number' || ir < 1 || ir > MAX_IR_VERSION) {
    throw new ModelValidationError(
      'unsupported-ir-version',
      `the model declares IR version ${ir}; the bundled onnxruntime supports IR versions 1 to ${MAX_IR_VERSION}` +
        (Number(ir) > MAX_IR_VERSION ? ': export it with an older ONNX release' : ''),
    );
  }
  const opsets = model.opset_import ?? [];
  if (opsets.length === 0) {
    throw new ModelValidationError('missing-opset-import', 'the model imports no operator set (opset_import is empty)');
  }
  for (const { domain, version } of opsets) {
    const d = normalizeDomain(domain);
    const max = MAX_OPSET_BY_DOMAIN[d];
    if (typeof version !== 'number' || version < 1) {
      throw new ModelValidationError(
        'unsupported-opset',
        `opset_import for domain '${d}' has invalid version ${version}`,
      );
    }
    if (max !== undefined && version > max) {
      throw new ModelValidationError(
        'unsupported-opset',
        `the model uses opset ${version} of domain '${d}'; the bundled onnxruntime supports up to opset ${max}`,
      );
    }
    if (d === 'ai.onnx' && version < MIN_DEFAULT_OPSET) {
      throw new ModelValidationError(
        'unsupported-opset',
        `the model uses ONNX opset ${version}; onnxruntime only supports opset ${MIN_DEFAULT_OPSET} and later: ` +
          `convert it (e.g. with onnx.version_converter) to a newer opset`,
      );
    }
  }
}
