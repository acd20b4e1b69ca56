/**
 * Upload-time validation of an untrusted .onnx file: everything that can be checked without running it.
 * Each failure is a ModelValidationError whose `code` says what kind of problem it is and whose message
 * names the node or tensor at fault, so the person uploading can fix the model.
 *
 * The file is walked, not loaded: its structure is read into memory and its large tensor payloads are only
 * measured (wireSkeleton.ts), so a multi-gigabyte model costs little more memory than its graph.
 */
import * as path from 'node:path';
import { analyzeModel, type ModelAnalysis } from '../analyze';
import { MAIN_GRAPH } from '../graph';
import type { GraphProto, OnnxModel } from '../model';
import { type ByteSource, bufferSource, FileSource } from './byteSource';
import { decodeSkeleton, forEachTensor } from './decodeSkeleton';
import { analyzeDependencies, type DependencyReport } from './dependencies';
import { checkOperatorDomains } from './domains';
import { ModelValidationError } from './errors';
import { checkExternalFiles, type ExternalFile } from './externalData';
import { checkGraph, NO_OUTER_SCOPE } from './graphs';
import { checkHeader } from './header';
import { checkTensor, type ExternalReference } from './tensors';
import { readModelSkeleton, type TensorByteRange } from './wireSkeleton';

export type { DependencyReport } from './dependencies';
export { type ModelValidationCode, ModelValidationError } from './errors';
export type { ExternalFile } from './externalData';
export type { TensorByteRange } from './wireSkeleton';

export interface ValidateOptions {
  /** Largest model accepted, counting external data files whose length the model declares. */
  maxBytes?: number;
  /** Deepest subgraph nesting accepted (an If inside a Loop body is depth 2). */
  maxSubgraphDepth?: number;
  /**
   * The folder the model's external data is relative to (everything in it counts as the upload). Given, each
   * external file must be there, reached through no symlink, and long enough; not given, only paths are checked.
   */
  modelDir?: string;
}

export interface ValidatedModel {
  /** The model's structure. Large raw_data payloads are left out (undefined): `tensorRanges` says where they are. */
  model: OnnxModel;
  analysis: ModelAnalysis;
  /** The model file's size in bytes. */
  sizeBytes: number;
  /** Where each left-out raw_data payload sits in the file, in file order. */
  tensorRanges: TensorByteRange[];
  /** External data files, checked when `modelDir` was given (else empty). */
  externalFiles: ExternalFile[];
  /** What the model needs from a runtime (dependencies.ts). */
  dependencies: DependencyReport;
}

/** protobuf's own ceiling for one message; larger models must keep weights in external data. */
export const DEFAULT_MAX_MODEL_BYTES = 2 * 1024 ** 3 - 1;
/** Real exporters nest a few levels (a Loop with an If inside); far deeper is a hostile or broken file. */
export const DEFAULT_MAX_SUBGRAPH_DEPTH = 16;
/** raw_data up to this size stays in the decoded model: shape constants that analysis reads. */
const INLINE_RAW_DATA_BYTES = 64 * 1024;
/** The structure a valid model can have without its weights; more is refused before it fills memory. */
const MAX_SKELETON_BYTES = 512 * 1024 ** 2;

export function validateModel(bytes: Uint8Array, opts: ValidateOptions = {}): ValidatedModel {
  return validateSource(bufferSource(bytes), opts);
}

/** Validates a model file in place; its external data is looked for beside it unless `modelDir` says otherwise. */
export function validateModelFile(file: string, opts: ValidateOptions = {}): ValidatedModel {
  let source: FileSource;
  try {
    source = new FileSource(file);
  } catch (err) {
    throw new ModelValidationError('empty-model', `cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return validateSource(source, { modelDir: path.dirname(file), ...opts });
  } finally {
    source.close();
  }
}

export function validateSource(source: ByteSource, opts: ValidateOptions = {}): ValidatedModel {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_MODEL_BYTES;
  if (source.size === 0) throw new ModelValidationError('empty-model', 'the file is empty (0 bytes)');
  if (source.size > maxBytes) {
    throw new ModelValidationError(
      'too-large',
      `the model is ${source.size} bytes, over the limit of ${maxBytes} bytes`,
    );
  }

  const skeleton = readModelSkeleton(source, {
    maxSubgraphDepth: opts.maxSubgraphDepth ?? DEFAULT_MAX_SUBGRAPH_DEPTH,
    inlineRawDataBytes: INLINE_RAW_DATA_BYTES,
    maxSkeletonBytes: MAX_SKELETON_BYTES,
  });
  const { model, rawDataRange } = decodeSkeleton(skeleton);
  checkHeader(model);
  const graph = model.graph as GraphProto;
  checkOperatorDomains(model, graph);
  checkGraph(graph, NO_OUTER_SCOPE, MAIN_GRAPH);

  const external: ExternalReference[] = [];
  forEachTensor(graph, (t, what) => {
    const ref = checkTensor(t, what, rawDataRange(t));
    if (ref) external.push(ref);
  });
  const externalBytes = external.reduce((sum, r) => sum + r.length, 0);
  if (source.size + externalBytes > maxBytes) {
    throw new ModelValidationError(
      'too-large',
      `the model with its external data is ${source.size + externalBytes} bytes, over the limit of ${maxBytes} bytes`,
    );
  }
  const externalFiles = opts.modelDir ? checkExternalFiles(external, opts.modelDir) : [];
  const analysis = analyzeModel(model);
  return {
    model,
    analysis,
    sizeBytes: source.size,
    tensorRanges: skeleton.tensorRanges,
    externalFiles,
    dependencies: analyzeDependencies(model, analysis, externalFiles),
  };
}
