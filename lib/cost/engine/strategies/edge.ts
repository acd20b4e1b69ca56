/**
 * Edge: one arm64 device the user names, already owned (no hourly price). Its speed against the reference
 * vCPU is an estimate from public single-thread comparisons of the cores (Cortex-A72/A76/A78AE); calibrate
 * with `--speed <device>=F` after `ferry optimize` on the device.
 */
import { type Hardware, isProblem, shapeOn } from '../capacity';
import type { PlanOption } from '../types';
import { infeasibleOption, optionId, type StrategyContext } from './context';
import { fleetOption } from './fleet';

export interface EdgeDevice {
  vcpus: number;
  memoryGiB: number;
  /** Per core, against the reference vCPU (cpuSpeed.ts); an estimate. */
  speed: number;
  description: string;
}

export const EDGE_DEVICES: Record<string, EdgeDevice> = {
  'raspberry-pi-4': {
    vcpus: 4,
    memoryGiB: 4,
    speed: 0.25,
    description: 'Raspberry Pi 4 (4× Cortex-A72 1.8 GHz, 4 GB)',
  },
  'raspberry-pi-5': {
    vcpus: 4,
    memoryGiB: 8,
    speed: 0.45,
    description: 'Raspberry Pi 5 (4× Cortex-A76 2.4 GHz, 8 GB)',
  },
  'jetson-orin-nano': {
    vcpus: 6,
    memoryGiB: 8,
    speed: 0.5,
    description: 'Jetson Orin Nano (6× Cortex-A78AE, 8 GB, CPU only)',
  },
};

export class UnknownEdgeDeviceError extends Error {
  override name = 'UnknownEdgeDeviceError';
}

export function edgeOption(ctx: StrategyContext, name: string): PlanOption {
  const device = EDGE_DEVICES[name];
  if (!device)
    throw new UnknownEdgeDeviceError(`unknown edge device "${name}" (known: ${Object.keys(EDGE_DEVICES).join(', ')})`);
  const base = {
    id: optionId('edge', 'edge', 'device', name),
    strategy: 'edge' as const,
    provider: 'edge',
    region: 'device',
    instanceType: name,
  };
  const calibrated = ctx.calibration[name];
  const hw: Hardware = {
    vcpus: device.vcpus,
    memoryGiB: device.memoryGiB,
    speed: { factor: calibrated ?? device.speed, basis: calibrated ? 'calibrated' : 'estimate', key: name },
  };
  const shape = shapeOn(ctx.model, hw, ctx.calibration);
  if (isProblem(shape)) return infeasibleOption(base, shape.kind, shape.reason);
  const option = fleetOption(ctx, {
    base,
    shape,
    usdPerInstanceHour: 0,
    minInstances: 1,
    fixedInstances: 1,
    estimates: calibrated ? [] : [`CPU speed of ${name} (estimate)`],
    what: `${device.description}, owned: no hourly price`,
  });
  return { ...option, risk: 'high', why: `${option.why}; one device, no redundancy, serves from where it stands` };
}
