/**
 * The dashboard's front-end (client/dashboard/web/, Preact + htm + uPlot) bundled by esbuild in memory,
 * once per process, when the API starts: one script and one stylesheet, served by the API itself so the
 * page needs nothing from another origin. The same sources give the same bytes (no timestamps, paths
 * relative to the repository), so the content hash works as an ETag.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { build } from 'esbuild';

export interface DashboardAsset {
  body: Buffer;
  contentType: string;
  /** sha256 of the body, quoted: the ETag. */
  etag: string;
}

export interface DashboardBundle {
  js: DashboardAsset;
  css: DashboardAsset;
}

const repoRoot = path.resolve(__dirname, '../..');
const entry = path.join(__dirname, 'web', 'main.ts');

function asset(contents: Uint8Array, contentType: string): DashboardAsset {
  const body = Buffer.from(contents);
  return { body, contentType, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"` };
}

export async function buildDashboard(): Promise<DashboardBundle> {
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: repoRoot,
    bundle: true,
    platform: 'browser',
    target: ['chrome110', 'firefox110', 'safari16'],
    format: 'iife',
    outdir: 'dashboard-assets', // names the outputs only: nothing is written
    minify: true,
    sourcemap: false,
    legalComments: 'eof',
    write: false,
    logLevel: 'silent',
  }).catch((error: { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }) => {
    const first = error.errors?.[0];
    const where = first?.location ? ` (${first.location.file}:${first.location.line})` : '';
    throw new Error(`bundling the dashboard failed: ${first?.text ?? String(error)}${where}`);
  });
  const out = (ext: string) => {
    const file = result.outputFiles.find((f) => f.path.endsWith(ext));
    if (!file) throw new Error(`bundling the dashboard gave no ${ext} file`);
    return file.contents;
  };
  return {
    js: asset(out('.js'), 'text/javascript; charset=utf-8'),
    css: asset(out('.css'), 'text/css; charset=utf-8'),
  };
}

let memo: Promise<DashboardBundle> | undefined;

/** The bundle, built at the first call of the process (every API app in it shares it). */
export function dashboardBundle(): Promise<DashboardBundle> {
  if (!memo) {
    memo = buildDashboard();
    memo.catch(() => {
      memo = undefined;
    });
  }
  return memo;
}
