/**
 * What the bundled onnxruntime-node (1.30) accepts, measured by loading probe models into it
 * (test/onnx/runtimeSupport.test.ts re-checks each bound, so an upgrade that moves one fails loudly).
 * It refuses a higher IR version or opset at load time; below opset 7 it warns that support is not
 * guaranteed and many kernels are missing, so Ferry refuses those too, with a hint to convert the model.
 */
export const MAX_IR_VERSION = 13;
export const MIN_DEFAULT_OPSET = 7;

/** Highest opset onnxruntime accepts per domain; domains not listed are custom-op domains (no bound known). */
export const MAX_OPSET_BY_DOMAIN: Readonly<Record<string, number>> = {
  'ai.onnx': 26,
  'ai.onnx.ml': 5,
  'com.microsoft': 1,
};

/** Operator domains defined by the ONNX standard itself. */
export const STANDARD_DOMAINS: ReadonlySet<string> = new Set(['ai.onnx', 'ai.onnx.ml', 'ai.onnx.preview.training']);

/**
 * Domains the bundled onnxruntime has kernels for: a node in any other domain needs a custom-op library
 * Ferry does not load, so the model could never run.
 */
export const RUNTIME_KERNEL_DOMAINS: ReadonlySet<string> = new Set(Object.keys(MAX_OPSET_BY_DOMAIN));
