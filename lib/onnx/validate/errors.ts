/** The one error validation throws: a code saying what kind of problem, a message naming the node or tensor. */

export type ModelValidationCode =
  | 'empty-model'
  | 'too-large'
  | 'not-protobuf'
  | 'no-graph'
  | 'unsupported-ir-version'
  | 'missing-opset-import'
  | 'unsupported-opset'
  | 'custom-op-domain'
  | 'duplicate-name'
  | 'dangling-input'
  | 'dangling-output'
  | 'cycle'
  | 'subgraph-too-deep'
  | 'bad-data-type'
  | 'initializer-size-mismatch'
  | 'dimension-overflow'
  | 'external-data-path'
  | 'external-data-missing'
  | 'external-data-short';

export class ModelValidationError extends Error {
  override readonly name = 'ModelValidationError';
  constructor(
    readonly code: ModelValidationCode,
    message: string,
  ) {
    super(message);
  }
}
