/**
 * The optimization plans Ferry can offer for a model, and which one it takes by default.
 * Each plan names a transform implemented in lib/optimize; the approval Update must name one of them.
 */
import type { ModelSummary, PlanOption } from '../../workflows/types';

export const ORIGINAL_PLAN = 'original';
export const GRAPH_OPTIMIZED_PLAN = 'graph-optimized';

export function proposePlans(summary: ModelSummary): { plans: PlanOption[]; defaultPlan: string } {
  const fusable = ['MatMul', 'Gemm', 'Conv', 'Add', 'Relu', 'BatchNormalization'].filter((op) => summary.opHistogram[op]);
  const plans: PlanOption[] = [
    {
      id: ORIGINAL_PLAN,
      title: 'Keep as is',
      description: 'Serve the uploaded model unchanged.',
      expectedEffect: 'No change in size, speed or outputs.',
    },
    {
      id: GRAPH_OPTIMIZED_PLAN,
      title: 'Offline graph optimization',
      description:
        'onnxruntime folds constants, removes redundant nodes and fuses operators once, ahead of time, and the image ships the result (extended level: portable across CPUs, unlike the hardware-specific "all" level).',
      expectedEffect: fusable.length
        ? `Same outputs (within float rounding); faster session start and lower latency from fusing ${fusable.join(', ')}.`
        : 'Same outputs; little to fuse in this model, so expect a small gain at most.',
    },
  ];
  return { plans, defaultPlan: GRAPH_OPTIMIZED_PLAN };
}
