/**
 * The price catalog's shape: a dated, versioned snapshot of list prices that the cost engine reads.
 * The data files and their loader (which validates them and computes the content hash) live beside this
 * file; the engine (lib/cost/engine/) depends only on these types.
 */

export type Provider = 'aws' | 'gcp' | 'azure';
export type Architecture = 'x86_64' | 'arm64';

/** Where a figure comes from. A figure nobody publishes is an `estimate`, never passed off as a list price. */
export interface PriceSource {
  /** Public page or API the figure was read from. */
  url: string;
  /** The day it was read, YYYY-MM-DD. */
  retrieved: string;
  /** True when the figure is derived or estimated rather than read as a list price. */
  estimate?: boolean;
  /** How an estimate was made, or anything a reader must know about the figure. */
  note?: string;
}

/** AWS Spot Instance Advisor style bands of the monthly interruption frequency. */
export type InterruptionBand = '<5%' | '5-10%' | '10-15%' | '15-20%' | '>20%';

export interface Accelerator {
  /** e.g. 'nvidia-t4' */
  kind: string;
  count: number;
  memoryGiB: number;
}

export interface InstancePrice {
  provider: Provider;
  region: string;
  instanceType: string;
  /** e.g. 'general-purpose' | 'compute-optimized' | 'gpu' */
  family: string;
  vcpus: number;
  memoryGiB: number;
  arch: Architecture;
  accelerator?: Accelerator;
  onDemandUsdPerHour: number;
  /** Spot price per zone (zone name → $/h); absent when the type has no spot market in the region. */
  spotUsdPerHour?: Record<string, number>;
  interruption?: InterruptionBand;
  source: PriceSource;
  /** Source of the spot figures when it differs from `source`. */
  spotSource?: PriceSource;
}

export interface ServerlessPrice {
  provider: Provider;
  /** e.g. 'aws-lambda' | 'gcp-cloud-run' | 'azure-container-apps' */
  service: string;
  region: string;
  arch: Architecture;
  usdPerMillionRequests: number;
  /** Billed per GB-second of memory, per vCPU-second, or both (Cloud Run bills both). */
  usdPerGbSecond: number;
  usdPerVcpuSecond: number;
  /** Monthly free allowance, applied per account; the engine may ignore it (conservative). */
  freeTier?: { requests: number; gbSeconds: number; vcpuSeconds: number };
  limits: {
    maxMemoryGiB: number;
    maxVcpus: number;
    maxTimeoutSeconds: number;
    /** Largest request body the service accepts. */
    maxRequestBytes: number;
    /** Deployment package / image size limit. */
    maxImageBytes?: number;
    /** Concurrent requests one instance serves (Lambda: 1). */
    maxConcurrencyPerInstance: number;
  };
  source: PriceSource;
}

export interface EgressPrice {
  provider: Provider;
  region: string;
  /** Internet egress, first paid tier. */
  usdPerGb: number;
  source: PriceSource;
}

export interface PriceCatalog {
  /** Catalog format version. */
  schemaVersion: 1;
  /** The snapshot's date, YYYY-MM-DD. */
  snapshotDate: string;
  instances: InstancePrice[];
  serverless: ServerlessPrice[];
  egress: EgressPrice[];
  /** sha256 of the catalog's canonical content, as the loader computes it. */
  contentHash: string;
}
