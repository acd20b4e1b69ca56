/**
 * What an optimized model will run on. Some transforms only pay off (or only load) on some targets; the
 * optimize stage builds and measures every candidate for this one and records it in its table.
 */
export interface TargetSpec {
  kind: 'cpu' | 'gpu';
  /** True when the image runs on the machine that optimizes it (allows hardware-specific passes). */
  sameMachine: boolean;
  /** Cores one replica may use. */
  threads: number;
}
