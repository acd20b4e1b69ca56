/**
 * The Python environment the benchmarks' peers run in (onnxruntime's quantizer, BentoML):
 * ~/.cache/ferry/bench-venv, or $FERRY_BENCH_VENV, created and filled on first use.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const PEER_VENV = process.env.FERRY_BENCH_VENV ?? path.join(os.homedir(), '.cache', 'ferry', 'bench-venv');

/** Returns the venv's python once every module in `modules` imports; pip-installs `packages` when not. */
export function ensurePeerPython(packages: string[], modules: string[] = packages): string {
  const python = path.join(PEER_VENV, 'bin', 'python');
  if (!existsSync(python)) {
    console.log(`creating the peer's virtualenv: python3 -m venv ${PEER_VENV}`);
    execFileSync('python3', ['-m', 'venv', PEER_VENV], { stdio: 'inherit' });
  }
  try {
    execFileSync(python, ['-c', `import ${modules.join(', ')}`], { stdio: 'ignore' });
  } catch {
    console.log(
      `installing the peer into ${PEER_VENV}: pip install ${packages.join(' ')} (a minute on a fresh machine)`,
    );
    execFileSync(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...packages], {
      stdio: 'inherit',
    });
  }
  return python;
}
