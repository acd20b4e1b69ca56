/**
 * The conventions a newcomer can rely on, checked over the source tree (CONTRIBUTING-style rules that
 * would otherwise drift): one direction for dependencies, one module reading the environment, typed
 * errors instead of message matching, and files small enough to read.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ensureLocalAdminKey } from '../../client/cli/up';
import { FerryError } from '../../client/sdk/errors';
import { loadConfig } from '../../lib/config';

const root = path.resolve(__dirname, '..', '..');
const SOURCE_FOLDERS = ['lib', 'activities', 'workflows', 'client', 'runtime', 'infra', 'scripts', 'bench'];

function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'dist') walk(rel);
      } else if (/\.(ts|mts)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(rel);
    }
  };
  for (const folder of SOURCE_FOLDERS) walk(folder);
  return out.sort();
}

/** The file's code lines, without comment lines (a comment may name what the code must not do). */
function codeLines(file: string): Array<{ line: number; text: string }> {
  return readFileSync(path.join(root, file), 'utf8')
    .split('\n')
    .map((text, i) => ({ line: i + 1, text }))
    .filter(({ text }) => !/^\s*(\/\/|\*|\/\*)/.test(text));
}

function offenders(files: string[], pattern: RegExp): string[] {
  return files.flatMap((file) =>
    codeLines(file)
      .filter(({ text }) => pattern.test(text))
      .map(({ line, text }) => `${file}:${line}: ${text.trim()}`),
  );
}

const files = sourceFiles();

test('the tree has the source folders this test walks', () => {
  for (const must of [
    'lib/config.ts',
    'workflows/deployModel.ts',
    'client/sdk/runs.ts',
    'runtime/server/settings.ts',
  ]) {
    assert.ok(files.includes(must), `${must} is walked`);
  }
});

test('lib/ never imports from workflows/, activities/ or client/ (dependencies point one way)', () => {
  const lib = files.filter((f) => f.startsWith(`lib${path.sep}`));
  assert.deepEqual(offenders(lib, /from\s+['"](\.\.\/)+(workflows|activities|client)\//), []);
});

test('only lib/config.ts and the listed process entrypoints read process.env', () => {
  // Each of these runs where lib/config.ts cannot be loaded (bundled into images, builtin-only
  // launchers) or is a process entrypoint handing settings to children; bench/ scripts are entrypoints.
  const allowed = new Set([
    'lib/config.ts',
    'runtime/server/settings.ts',
    'runtime/batch/settings.ts',
    'runtime/agent/main.ts',
    'lib/gateway/replicaLauncher.ts',
  ]);
  const checked = files.filter((f) => !allowed.has(f) && !f.startsWith(`bench${path.sep}`));
  // Not inside a string: launchPlan.ts looks for that text in a server bundle.
  assert.deepEqual(offenders(checked, /(?<!['"`])\bprocess\.env\b/), []);
});

test('no branching on an error message: errors callers tell apart are classes or carry a code', () => {
  const pattern =
    /\.test\(\s*(String\(\s*)?(e|\w*err\w*)(\.message)?\s*\)|\b(e|\w*err\w*)\.message\.(includes|match|startsWith|endsWith)\(/i;
  assert.deepEqual(offenders(files, pattern), []);
});

test('no source file is over 600 lines', () => {
  const long = files
    .map((file) => ({ file, lines: readFileSync(path.join(root, file), 'utf8').split('\n').length }))
    .filter(({ lines }) => lines > 600)
    .map(({ file, lines }) => `${file}: ${lines} lines`);
  assert.deepEqual(long, []);
});

test('ferry up names an unreachable database by what happened, not by its message', async () => {
  // Port 1 on loopback: nothing listens there, so the connection is refused at once.
  const config = { ...loadConfig(), postgres: { url: 'postgres://ferry:x@127.0.0.1:1/ferry' } };
  await assert.rejects(
    ensureLocalAdminKey(config),
    (err: unknown) =>
      err instanceof FerryError &&
      err.message.startsWith('PostgreSQL at 127.0.0.1:1 is not reachable (ECONNREFUSED) to make the admin key'),
  );
});
