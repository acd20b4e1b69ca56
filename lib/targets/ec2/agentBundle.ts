/**
 * The replica agent (runtime/agent/main.ts) as one self-contained JavaScript file, which the user data
 * carries to each instance and the image's own node runs. Built with esbuild, minified (the user data
 * holds 16 KB), once per process.
 */
import * as path from 'node:path';
import { build } from 'esbuild';

const AGENT_ENTRY = path.resolve(__dirname, '../../../runtime/agent/main.ts');

export async function bundleReplicaAgent(entry = AGENT_ENTRY): Promise<string> {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    write: false,
    legalComments: 'none',
  });
  return out.outputFiles[0].text;
}
