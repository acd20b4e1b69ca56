/**
 * What the providers' price files do not say, for the types the refresh turns into rows: GCP and Azure
 * price files carry no vCPU or memory figures (GCP prices a machine type as vCPUs plus GiB of its series;
 * Azure lists a size's price only), and the AWS offer file gives a GPU count but not its model. These are
 * specifications from the providers' machine-type pages, not prices. A type that is not here is not
 * refreshed; add it here to include it.
 */
import type { Accelerator, Architecture } from '../types';

export interface Shape {
  family: string;
  vcpus: number;
  memoryGiB: number;
  arch: Architecture;
  accelerator?: Accelerator;
}

/** A GCP machine series: the description its Cloud Billing SKUs start with, per resource. */
export interface GcpSeries {
  /** e.g. 'N2 Instance': matches "N2 Instance Core running in Americas" and "N2 Instance Ram ...". */
  skuPrefix: string;
  /** The GPU SKUs' description start, for series whose machine types include a GPU. */
  gpuSkuPrefix?: string;
}

export const GCP_SERIES: Record<string, GcpSeries> = {
  n2: { skuPrefix: 'N2 Instance' },
  n2d: { skuPrefix: 'N2D AMD Instance' },
  t2a: { skuPrefix: 'T2A Arm Instance' },
  t2d: { skuPrefix: 'T2D AMD Instance' },
  c2: { skuPrefix: 'Compute optimized' },
  c4a: { skuPrefix: 'C4A Arm Instance' },
  g2: { skuPrefix: 'G2 Instance', gpuSkuPrefix: 'Nvidia L4 GPU' },
};

const l4 = (count: number): Accelerator => ({ kind: 'nvidia-l4', count, memoryGiB: 24 });
const t4 = (count: number): Accelerator => ({ kind: 'nvidia-t4', count, memoryGiB: 16 });

export const GCP_MACHINE_TYPES: Record<string, Shape> = {
  'n2-standard-2': { family: 'general-purpose', vcpus: 2, memoryGiB: 8, arch: 'x86_64' },
  'n2-standard-4': { family: 'general-purpose', vcpus: 4, memoryGiB: 16, arch: 'x86_64' },
  'n2-standard-8': { family: 'general-purpose', vcpus: 8, memoryGiB: 32, arch: 'x86_64' },
  'n2-highcpu-4': { family: 'compute-optimized', vcpus: 4, memoryGiB: 4, arch: 'x86_64' },
  'n2d-standard-2': { family: 'general-purpose', vcpus: 2, memoryGiB: 8, arch: 'x86_64' },
  'n2d-standard-4': { family: 'general-purpose', vcpus: 4, memoryGiB: 16, arch: 'x86_64' },
  't2a-standard-1': { family: 'general-purpose', vcpus: 1, memoryGiB: 4, arch: 'arm64' },
  't2a-standard-2': { family: 'general-purpose', vcpus: 2, memoryGiB: 8, arch: 'arm64' },
  't2a-standard-4': { family: 'general-purpose', vcpus: 4, memoryGiB: 16, arch: 'arm64' },
  't2a-standard-8': { family: 'general-purpose', vcpus: 8, memoryGiB: 32, arch: 'arm64' },
  't2d-standard-2': { family: 'general-purpose', vcpus: 2, memoryGiB: 8, arch: 'x86_64' },
  't2d-standard-4': { family: 'general-purpose', vcpus: 4, memoryGiB: 16, arch: 'x86_64' },
  'c2-standard-4': { family: 'compute-optimized', vcpus: 4, memoryGiB: 16, arch: 'x86_64' },
  'c2-standard-8': { family: 'compute-optimized', vcpus: 8, memoryGiB: 32, arch: 'x86_64' },
  'c4a-highcpu-4': { family: 'compute-optimized', vcpus: 4, memoryGiB: 8, arch: 'arm64' },
  'c4a-standard-4': { family: 'general-purpose', vcpus: 4, memoryGiB: 16, arch: 'arm64' },
  'g2-standard-4': { family: 'gpu', vcpus: 4, memoryGiB: 16, arch: 'x86_64', accelerator: l4(1) },
  'g2-standard-8': { family: 'gpu', vcpus: 8, memoryGiB: 32, arch: 'x86_64', accelerator: l4(1) },
};

/** GCP zones per region (the billing SKUs are regional; Spot VM prices are the same in every zone). */
export const GCP_ZONES: Record<string, string[]> = {
  'us-central1': ['us-central1-a', 'us-central1-b', 'us-central1-c', 'us-central1-f'],
  'us-east1': ['us-east1-b', 'us-east1-c', 'us-east1-d'],
  'us-west1': ['us-west1-a', 'us-west1-b', 'us-west1-c'],
  'europe-west1': ['europe-west1-b', 'europe-west1-c', 'europe-west1-d'],
  'europe-west4': ['europe-west4-a', 'europe-west4-b', 'europe-west4-c'],
};

/** Azure sizes by ARM SKU name (Retail Prices API `armSkuName`). */
export const AZURE_SIZES: Record<string, Shape> = {
  Standard_D2s_v5: { family: 'general-purpose', vcpus: 2, memoryGiB: 8, arch: 'x86_64' },
  Standard_D4s_v5: { family: 'general-purpose', vcpus: 4, memoryGiB: 16, arch: 'x86_64' },
  Standard_D8s_v5: { family: 'general-purpose', vcpus: 8, memoryGiB: 32, arch: 'x86_64' },
  Standard_D2ps_v5: { family: 'general-purpose', vcpus: 2, memoryGiB: 8, arch: 'arm64' },
  Standard_D4ps_v5: { family: 'general-purpose', vcpus: 4, memoryGiB: 16, arch: 'arm64' },
  Standard_D8ps_v5: { family: 'general-purpose', vcpus: 8, memoryGiB: 32, arch: 'arm64' },
  Standard_F2s_v2: { family: 'compute-optimized', vcpus: 2, memoryGiB: 4, arch: 'x86_64' },
  Standard_F4s_v2: { family: 'compute-optimized', vcpus: 4, memoryGiB: 8, arch: 'x86_64' },
  Standard_F8s_v2: { family: 'compute-optimized', vcpus: 8, memoryGiB: 16, arch: 'x86_64' },
  Standard_NC4as_T4_v3: { family: 'gpu', vcpus: 4, memoryGiB: 28, arch: 'x86_64', accelerator: t4(1) },
  Standard_NC8as_T4_v3: { family: 'gpu', vcpus: 8, memoryGiB: 56, arch: 'x86_64', accelerator: t4(1) },
};

/** Azure regions with availability zones (logical zones 1-3); Spot is priced per region. */
export const AZURE_ZONED_REGIONS = new Set(['eastus', 'eastus2', 'westus2', 'westus3', 'westeurope', 'northeurope']);

/** AWS GPU models by instance family (the offer file gives only a count). */
export const AWS_GPU_FAMILIES: Record<string, Omit<Accelerator, 'count'>> = {
  g4dn: { kind: 'nvidia-t4', memoryGiB: 16 },
  g5: { kind: 'nvidia-a10g', memoryGiB: 24 },
  g5g: { kind: 'nvidia-t4g', memoryGiB: 16 },
  g6: { kind: 'nvidia-l4', memoryGiB: 24 },
  g6e: { kind: 'nvidia-l40s', memoryGiB: 48 },
  p3: { kind: 'nvidia-v100', memoryGiB: 16 },
  p4d: { kind: 'nvidia-a100', memoryGiB: 40 },
  p5: { kind: 'nvidia-h100', memoryGiB: 80 },
};
