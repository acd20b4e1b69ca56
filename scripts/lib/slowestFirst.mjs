// Prints the test files given as arguments, slowest first by the durations a previous run recorded
// (scripts/lib/fileDurations.mjs); files with no record (new ones) go first, as they may be slow.
// Usage: node slowestFirst.mjs <durations.json> <file>...
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const [durationsFile, ...files] = process.argv.slice(2);
let recorded = {};
try {
  if (existsSync(durationsFile)) recorded = JSON.parse(readFileSync(durationsFile, 'utf8'));
} catch {
  // A damaged record only costs the ordering.
}
const ms = (f) => recorded[path.normalize(f)] ?? Number.POSITIVE_INFINITY;
const ordered = files.map((f, i) => ({ f, i })).sort((a, b) => ms(b.f) - ms(a.f) || a.i - b.i);
for (const { f } of ordered) console.log(f);
