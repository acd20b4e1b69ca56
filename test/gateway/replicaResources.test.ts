/** The limits the deploy stage gives replicas from the chosen plan's measurement (lib/targets/replicaResources.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resourcesForMeasurement } from '../../lib/targets/replicaResources';

const MiB = 1 << 20;

test('memory is twice the measured peak, in 64 MiB steps, at least 256 MiB; CPUs are the session cores', () => {
  assert.deepEqual(resourcesForMeasurement({ peakRssBytes: 300 * MiB, cores: 2 }), { cpus: 2, memoryMb: 640 });
  assert.deepEqual(resourcesForMeasurement({ peakRssBytes: 161 * MiB, cores: 1 }), { cpus: 1, memoryMb: 384 });
  assert.deepEqual(resourcesForMeasurement({ peakRssBytes: 40 * MiB, cores: 1 }), { cpus: 1, memoryMb: 256 });
  assert.deepEqual(resourcesForMeasurement({ peakRssBytes: 100 * MiB, cores: 0.25 }), { cpus: 0.5, memoryMb: 256 });
});
