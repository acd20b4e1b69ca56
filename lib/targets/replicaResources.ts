/**
 * The limits a deployment's replicas get from the plan the optimize stage measured (its trade-off row):
 * memory from the peak resident memory of a process that loaded the plan's model and ran it alone
 * (node and onnxruntime included), with room for larger batches and the server's own buffers; CPUs
 * from the cores its session uses. The deploy stage puts them in the spec (`resources`).
 */
import type { ReplicaResources } from './deploymentTarget';

const MiB = 1 << 20;
/** Twice the measured peak: batches bigger than the measurement's, and the HTTP server around it. */
const MEMORY_HEADROOM = 2;
const MEMORY_STEP_MB = 64;
const MIN_MEMORY_MB = 256;
const MIN_CPUS = 0.5;

export function resourcesForMeasurement(row: { peakRssBytes: number; cores: number }): ReplicaResources {
  const wantedMb = (row.peakRssBytes * MEMORY_HEADROOM) / MiB;
  const memoryMb = Math.max(MIN_MEMORY_MB, Math.ceil(wantedMb / MEMORY_STEP_MB) * MEMORY_STEP_MB);
  const cpus = Math.max(MIN_CPUS, Number.isFinite(row.cores) ? row.cores : 1);
  return { cpus, memoryMb };
}
