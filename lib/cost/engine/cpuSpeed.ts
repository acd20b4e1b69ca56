/**
 * Per-family CPU speed factors: how fast one vCPU of an instance family runs a model's inference relative
 * to one vCPU of the machine Ferry measured it on. THE table: every strategy reads its factors here.
 *
 *   predicted service time = measured service time × measuringMachine / factor(family)
 *
 * Assumptions, stated once:
 * - The reference (1.0) is a vCPU of a current x86 server at roughly Ice Lake / Sapphire Rapids speed (a
 *   hyperthread, as AWS m6i/m7i vCPUs are); the measuring machine is assumed to be one (`measuringMachine`
 *   = 1.0) until calibrated. Older or burstable families are slower, newer ones faster.
 * - arm64 vCPUs (Graviton, Ampere, Axion) are whole cores, which makes up part of their lower clock on
 *   onnxruntime's MLAS kernels; their factors are near the x86 ones of the same generation.
 * - Every figure here is an ESTIMATE, made from public single-thread and SPECrate-style comparisons
 *   between the generations, not from running Ferry's models on them. Nobody publishes onnxruntime figures
 *   per family; a user who can benchmark on the target calibrates (below).
 * - GPU factors are speedups of batch-1 inference over the whole CPU measurement, estimates too, used
 *   only when the plan asks for a GPU (`--gpu`).
 *
 * Calibrating: `ferry plan ... --speed m7g=1.25,c3=1.1,this=0.9` (or a JSON object in a file): a series
 * (m7g, c3, Dps_v5), an exact instance type (m7g.large), an accelerator kind (nvidia-t4) or `this` (the
 * measuring machine against the reference) replaces the table's figure. Measure the model on the target
 * with `ferry optimize` and divide its batch-1 throughput per vCPU by this machine's.
 */
import type { Accelerator, InstancePrice, Provider } from '../catalog/types';

export interface SpeedFactor {
  factor: number;
  /** Where the figure comes from: the table (an estimate), a calibration, or the fallback for an unknown family. */
  basis: 'estimate' | 'calibrated' | 'default';
  /** The table key it was found under. */
  key: string;
}

/** Per vCPU, against the reference vCPU. Keys: AWS/GCP series, Azure `<letters><suffix>_v<n>`. */
export const CPU_SPEED_FACTORS: Record<Provider, Record<string, number>> = {
  aws: {
    t3: 0.75,
    t4g: 0.75,
    m5: 0.85,
    c5: 0.9,
    m6i: 0.95,
    c6i: 1.0,
    m6a: 0.95,
    c6a: 1.0,
    m7i: 1.05,
    c7i: 1.1,
    m7a: 1.15,
    c7a: 1.2,
    m6g: 0.8,
    c6g: 0.85,
    m7g: 1.0,
    c7g: 1.05,
    m8g: 1.15,
    c8g: 1.2,
    g4dn: 0.85,
    g5: 0.95,
    g6: 1.0,
  },
  gcp: {
    e2: 0.75,
    n1: 0.75,
    n2: 0.95,
    n2d: 0.95,
    t2d: 1.0,
    c2: 1.05,
    c2d: 1.1,
    c3: 1.1,
    c3d: 1.15,
    n4: 1.05,
    t2a: 0.85,
    c4a: 1.1,
    g2: 1.0,
  },
  azure: {
    Ds_v4: 0.85,
    Ds_v5: 0.95,
    Das_v5: 0.95,
    Dads_v5: 0.95,
    Fs_v2: 0.9,
    Fas_v6: 1.1,
    Dps_v5: 0.85,
    Dpds_v5: 0.85,
    Eps_v5: 0.85,
    Dps_v6: 1.0,
    Ds_v6: 1.05,
    Das_v6: 1.1,
    NCasT4_v3: 0.85,
    NVadsA10_v5: 0.95,
  },
};

/** Batch-1 speedup of a GPU over the CPU measurement (estimates; small models gain little from a GPU). */
export const GPU_SPEEDUPS: Record<string, number> = {
  'nvidia-t4': 3,
  'nvidia-a10g': 4,
  'nvidia-a10': 4,
  'nvidia-l4': 4,
};

/** For a family the table does not know: the generation-neutral figure of its architecture. */
const FALLBACK = { x86_64: 0.9, arm64: 0.85 } as const;

export type Calibration = Record<string, number>;

/** The table key of an instance type: `m7g.large` → m7g, `c3-standard-4` → c3, `Standard_D2ps_v5` → Dps_v5. */
export function seriesOf(provider: Provider, instanceType: string): string {
  if (provider === 'azure') {
    const m = /^Standard_([A-Z]+)\d+([A-Za-z0-9]*?)_(v\d+)$/.exec(instanceType);
    return m ? `${m[1]}${m[2]}_${m[3]}` : instanceType;
  }
  return instanceType.split(provider === 'aws' ? '.' : '-')[0];
}

export function cpuSpeed(
  instance: Pick<InstancePrice, 'provider' | 'instanceType' | 'arch'>,
  calibration: Calibration = {},
): SpeedFactor {
  const series = seriesOf(instance.provider, instance.instanceType);
  for (const key of [instance.instanceType, series]) {
    const c = calibration[key];
    if (c !== undefined) return { factor: c, basis: 'calibrated', key };
  }
  const known = CPU_SPEED_FACTORS[instance.provider][series];
  if (known !== undefined) return { factor: known, basis: 'estimate', key: series };
  return { factor: FALLBACK[instance.arch], basis: 'default', key: instance.arch };
}

export function gpuSpeedup(acc: Accelerator, calibration: Calibration = {}): SpeedFactor | undefined {
  const c = calibration[acc.kind];
  if (c !== undefined) return { factor: c, basis: 'calibrated', key: acc.kind };
  const known = GPU_SPEEDUPS[acc.kind];
  return known === undefined ? undefined : { factor: known, basis: 'estimate', key: acc.kind };
}

/** The measuring machine against the reference (`this=` in a calibration; 1.0 otherwise). */
export function measuringMachineFactor(calibration: Calibration = {}): number {
  return calibration.this ?? 1;
}

/** `m7g=1.25,this=0.9` → { m7g: 1.25, this: 0.9 }. */
export function parseCalibration(raw: string): Calibration {
  const out: Calibration = {};
  for (const part of raw.split(',').filter((p) => p.trim())) {
    const [k, v] = part.split('=');
    const n = Number(v);
    if (!k?.trim() || !(n > 0)) throw new Error(`"${part}" is not series=factor (a factor above 0), e.g. m7g=1.2`);
    out[k.trim()] = n;
  }
  return out;
}
