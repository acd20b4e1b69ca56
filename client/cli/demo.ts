/**
 * `ferry demo`: what the README's first command ends with — start Ferry's services, one-click deploy
 * the example model, print where everything is, and send one real inference.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { adminKeyPath } from '../../lib/auth/bootstrapKey';
import type { FerryConfig } from '../../lib/config';
import { exampleModelSpec, generateMlpModel } from '../../lib/onnx/generate';
import { concreteShape, seededRandom } from '../../lib/optimize/sampleInputs';
import { FerryClient } from '../sdk';
import { deployCommand } from './commands';
import { startFerry } from './up';

export async function writeExampleModel(config: FerryConfig, out?: string, sizeMb?: number): Promise<string> {
  const file = out ?? path.join(config.stateDir, 'examples', 'example-mlp.onnx');
  if (!out && existsSync(file) && sizeMb === undefined) return file;
  await mkdir(path.dirname(file), { recursive: true });
  const spec = exampleModelSpec(sizeMb ?? 10);
  await writeFile(`${file}.tmp`, generateMlpModel(spec));
  await rename(`${file}.tmp`, file);
  return file;
}

export async function runDemo(config: FerryConfig): Promise<void> {
  await startFerry(config);
  const file = await writeExampleModel(config);
  console.log(`Example model: ${file}`);
  const ferry = await FerryClient.connect(config);
  try {
    let status = await deployCommand(ferry, file, { review: false, model: 'example-mlp', wait: true });
    if (status && (await ferry.serving(status.deploymentId))?.servingState === 'undeployed') {
      // This version was deployed and later undeployed: deploy the same file again as a new version.
      const version = `${status.version}-r${Date.now().toString(36)}`;
      console.log(`${status.deploymentId} was undeployed earlier; deploying the example again as version ${version}.`);
      status = await deployCommand(ferry, file, { review: false, model: 'example-mlp', version, wait: true });
    }
    if (!status?.summary) throw new Error('deployment finished without a model summary');
    const input = status.summary.inputs[0];
    const shape = concreteShape(input, 1);
    const rand = seededRandom(7);
    const data = Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Number((rand() * 2 - 1).toFixed(4)));
    const t0 = performance.now();
    const answer = await ferry.infer(status.deploymentId, {
      inputs: [{ name: input.name, shape, datatype: input.dataType, data }],
    });
    const ms = performance.now() - t0;
    const out = answer.outputs[0];
    const values = out.data as number[];
    const top = values.reduce((best, v, i) => (v > values[best] ? i : best), 0);
    console.log(`\nOne inference through the endpoint (${ms.toFixed(1)} ms):`);
    console.log(
      `  ${out.name} ${JSON.stringify(out.shape)} = [${values
        .slice(0, 10)
        .map((v) => v.toFixed(4))
        .join(', ')}${values.length > 10 ? ', ...' : ''}]  (top class ${top})`,
    );
    // Inference wants a key with `infer` (the deployment is not --public): this machine's admin key, or FERRY_API_KEY.
    const key = config.api.key ? '$FERRY_API_KEY' : `$(cat ${adminKeyPath(config.stateDir)})`;
    console.log(
      `\nTry it yourself:\n  curl -s -X POST ${status.inferUrl} -H 'content-type: application/json' -H "authorization: Bearer ${key}" \\\n    -d '{"inputs":[{"name":"${input.name}","shape":${JSON.stringify(shape)},"datatype":"${input.dataType}","data":[...${data.length} numbers]}]}'`,
    );
  } finally {
    await ferry.close();
  }
}
