import path from 'node:path';

// A node:test reporter that writes how long each test file took (the sum of its top-level tests) as
// JSON { "<file>": ms }: scripts/test-tier.sh starts the slowest files first next time, so the two
// workers do not end with one long file running alone.
export default async function* fileDurations(source) {
  const totals = {};
  for await (const event of source) {
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.nesting === 0 && event.data.file) {
      // Relative to the checkout (the tier runs from its root), so any clone reads the same record.
      const file = path.relative(process.cwd(), event.data.file);
      totals[file] = (totals[file] ?? 0) + (event.data.details?.duration_ms ?? 0);
    }
  }
  yield `${JSON.stringify(totals)}\n`;
}
