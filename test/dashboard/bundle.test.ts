/**
 * The dashboard's bundle: built from the same sources it is the same bytes (its hash is the ETag), and it
 * holds nothing the page's CSP would refuse (eval, string-built functions); the dashboard's own sources
 * never write markup from strings, so every value goes through Preact's escaping.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { buildDashboard } from '../../client/dashboard/bundle';

test('the dashboard bundle is reproducible, without eval, with both stylesheets', async () => {
  const [a, b] = [await buildDashboard(), await buildDashboard()];
  assert.ok(a.js.body.equals(b.js.body) && a.css.body.equals(b.css.body), 'same sources, same bytes');
  assert.equal(a.js.etag, b.js.etag);
  const js = a.js.body.toString('utf8');
  assert.ok(js.length > 20_000, `${js.length} bytes of script`);
  for (const banned of [/\beval\(/, /new Function\(/, /\bFunction\("/]) assert.doesNotMatch(js, banned);
  const css = a.css.body.toString('utf8');
  assert.match(css, /\.uplot/, "uPlot's stylesheet is in");
  assert.match(css, /\.stages/, "and the dashboard's own");
});

test("the dashboard's sources render through Preact only: no markup from strings", () => {
  const dir = path.resolve(__dirname, '../../client/dashboard/web');
  const sources = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(sources.length >= 8, sources.join(' '));
  for (const file of sources) {
    const text = readFileSync(path.join(dir, file), 'utf8');
    for (const banned of [
      /dangerouslySetInnerHTML/,
      /\.innerHTML/,
      /outerHTML/,
      /insertAdjacentHTML/,
      /document\.write/,
    ]) {
      assert.doesNotMatch(text, banned, `${file} writes markup from a string`);
    }
  }
});
