/**
 * The dashboard in a real browser (headless Chromium), against the real API, worker and gateway:
 * - with auth off, the page works without signing in, and a hostile id in the URL is shown as text;
 * - with auth on, signing in with a key, uploading a model from the page with its progress bar, approving
 *   the review-mode run from the page, following it until live, its serving card and uPlot charts, and
 *   hostile text in the audit log shown literally.
 * No dialog may open, no Content-Security-Policy violation may happen, and no script may fail.
 */
// biome-ignore-all lint/performance/useDomNodeTextContent: these are Playwright's Locator.innerText(), not the DOM property; the rendered text (cells apart) is what is asserted
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startApiServer } from '../../client/api/server';
import { AuditLog } from '../../lib/auth/audit';
import { KeyStore } from '../../lib/auth/keyStore';
import type { FerryConfig } from '../../lib/config';
import { getPool } from '../../lib/db/pool';
import { launchBrowser } from '../helpers/browser';
import { eventually, type FerryHarness, freePort, startHarness } from '../helpers/ferryHarness';

const HOSTILE = ['<script>alert(1)</script>', '</script><script>alert(2)</script>', '"><img src=x onerror=alert(3)>'];

let h: FerryHarness;
let apiOpen: { url: string; close(): Promise<void> };
let apiAuth: { url: string; close(): Promise<void> };
let browser: Browser;
before(async () => {
  h = await startHarness('browser');
  await h.startWorker();
  // Runs started from the page take the API's defaults: a monitor sample every second, no hibernation.
  const config: FerryConfig = {
    ...h.config,
    deploy: { approvalTimeoutMs: 10 * 60_000, monitorIntervalMs: 1000, idleHibernateMs: 10 * 60_000 },
  };
  // Auth is on by default; the first API turns it off (allowed on loopback) to show the open page.
  apiOpen = await startApiServer({ ...config, access: { ...config.access, auth: false } }, await freePort());
  apiAuth = await startApiServer({ ...config, access: { ...config.access, auth: true } }, await freePort());
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await apiOpen?.close();
  await apiAuth?.close();
  await h?.close();
});

/** A page that records what must never happen: dialogs (an injected alert), script errors, CSP violations. */
async function watchedPage(): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return { page, problems };
}

/** Elements a successful injection would add: more scripts than the bundle, any img, any iframe. */
const injectedElements = (page: Page) =>
  page.evaluate(`document.scripts.length - 1 + document.querySelectorAll('img, iframe').length`) as Promise<number>;

test('auth off: the page works without signing in, is served with a strict CSP, and shows a hostile id as text', async () => {
  const res = await fetch(`${apiOpen.url}/`);
  assert.equal(res.status, 200);
  const csp = res.headers.get('content-security-policy') ?? '';
  for (const part of ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"]) {
    assert.ok(csp.includes(part), `CSP has ${part}: ${csp}`);
  }
  assert.ok(!/unsafe-inline|unsafe-eval/.test(csp), csp);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.doesNotMatch(await res.text(), /<script>[^<]/, 'no inline script in the page');
  const js = await fetch(`${apiOpen.url}/assets/dashboard.js`);
  assert.equal(js.status, 200);
  assert.match(String(js.headers.get('content-type')), /javascript/);
  assert.equal(js.headers.get('x-content-type-options'), 'nosniff');

  // A page on another origin cannot make the API change anything: refused before any handler runs.
  const crossSite = await fetch(`${apiOpen.url}/api/deployments?name=x`, {
    method: 'POST',
    headers: { origin: 'https://evil.example', 'content-type': 'application/octet-stream' },
    body: 'x',
  });
  assert.equal(crossSite.status, 403);
  assert.match(
    ((await crossSite.json()) as { error: string }).error,
    /cross-origin request from https:\/\/evil\.example/,
  );

  const { page, problems } = await watchedPage();
  await page.goto(apiOpen.url);
  await page.waitForSelector('h2:has-text("Deployments")');
  assert.match(await page.locator('header').innerText(), /auth off/);
  assert.equal(await page.locator('form.signin, .signin').count(), 0, 'no sign-in form with auth off');

  for (const name of HOSTILE) {
    await page.goto(`${apiOpen.url}/deployments/${encodeURIComponent(name)}`);
    await page.waitForSelector('#view-error');
    assert.equal(await page.locator('h2#title').textContent(), name, 'the id from the URL, literally');
    assert.equal(await injectedElements(page), 0, `nothing injected by ${name}`);
  }
  // Unencoded in the URL too: the browser escapes what it must, and the page still shows text only.
  const raw = '<img src=x onerror=alert(4)>';
  await page.goto(`${apiOpen.url}/deployments/${raw}`);
  await page.waitForSelector('#view-error');
  assert.equal(await page.locator('h2#title').textContent(), raw);
  assert.equal(await injectedElements(page), 0);
  assert.deepEqual(problems, []);
  await page.close();
});

test('auth on: sign in with a key, upload a model with progress, approve it from the page, watch it go live with its charts', async () => {
  const pool = getPool(h.config.postgres.url);
  const project = `ui-${h.runId}`
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 40);
  const keyName = 'dashboard-test';
  const { key } = await new KeyStore(pool).createKey({
    project,
    name: keyName,
    scopes: ['read', 'deploy', 'approve'],
  });
  const { page, problems } = await watchedPage();
  const sentAuth: string[] = [];
  page.on('request', (r) => {
    if (!new URL(r.url()).pathname.startsWith('/api/')) return;
    const headers = r.headers();
    if (headers.cookie !== undefined) problems.push(`a cookie was sent to ${r.url()}`);
    if (headers.authorization) sentAuth.push(headers.authorization);
  });

  // Signing in: the API asks for a key; a wrong one is refused, the right one is kept for the tab.
  await page.goto(apiAuth.url);
  await page.waitForSelector('.signin');
  await page.fill('input[name="api-key"]', 'ferry_not-a-real-key');
  await page.click('button:has-text("Sign in")');
  await page.waitForSelector('text=that key was refused');
  await page.fill('input[name="api-key"]', key);
  await page.click('button:has-text("Sign in")');
  await page.waitForSelector('h2:has-text("Deployments")');
  assert.match(await page.locator('header').innerText(), new RegExp(`signed in as ${project}/${keyName}`));
  assert.ok(sentAuth.includes(`Bearer ${key}`), 'the key goes in the Authorization header');
  assert.deepEqual(await page.context().cookies(), [], 'and never into a cookie');

  // Upload from the page: pick the file, review mode, Deploy; the bar goes from 0 to the whole file.
  const name = `ui-${h.runId}`;
  const modelFile = await h.writeModel(name, { inputDim: 10, hiddenDims: [20], outputDim: 4, seed: 12 });
  const size = statSync(modelFile).size;
  // The file picker names the model after the file; a name the API would refuse keeps Deploy off.
  await page.setInputFiles('input[type="file"]', `${modelFile}`);
  assert.equal(await page.inputValue('input[name="model-name"]'), name, 'the name comes from the file');
  await page.fill('input[name="model-name"]', HOSTILE[0]);
  await page.waitForSelector('text=Model names use lower-case letters');
  assert.equal(await page.isDisabled('button:has-text("Deploy")'), true);
  assert.equal(await page.inputValue('input[name="model-name"]'), HOSTILE[0]);
  // Dropping the file on the page works the same way (a DataTransfer holding the model's bytes).
  const dataTransfer = await page.evaluateHandle(
    ({ b64, fileName }) => {
      const g = globalThis as any; // the test's tsconfig has no DOM types
      const raw = Uint8Array.from(g.atob(b64) as string, (c) => c.charCodeAt(0));
      const dt = new g.DataTransfer();
      dt.items.add(new g.File([raw], fileName, { type: 'application/octet-stream' }));
      return dt;
    },
    { b64: readFileSync(modelFile).toString('base64'), fileName: `${name}.onnx` },
  );
  await page.dispatchEvent('.upload .drop', 'dragover', { dataTransfer });
  await page.waitForSelector('.upload .drop.over');
  await page.dispatchEvent('.upload .drop', 'drop', { dataTransfer });
  assert.equal(await page.inputValue('input[name="model-name"]'), name, 'the name comes from the dropped file');
  assert.equal(await page.isDisabled('button:has-text("Deploy")'), false);
  await page.selectOption('select[name="mode"]', 'review');
  // Record every state of the progress bar (the page moves on to the run as soon as the upload is done).
  await page.evaluate(`(() => {
    window.progressSeen = [];
    new MutationObserver(() => {
      const p = document.getElementById('upload-progress');
      if (p) window.progressSeen.push([p.value, p.max]);
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
  })()`);
  await page.click('button:has-text("Deploy")');
  await page.waitForURL(/\/deployments\//, { timeout: 30_000 });
  const seen = (await page.evaluate('window.progressSeen')) as Array<[number, number]>;
  assert.ok(seen.length >= 2, `progress states: ${JSON.stringify(seen)}`);
  assert.deepEqual(seen[0], [0, size], 'the bar starts empty');
  assert.deepEqual(seen.at(-1), [size, size], 'and ends full');
  const deploymentId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop()!);
  assert.ok(deploymentId.startsWith(`${name}-`), deploymentId);

  // The run waits for an approval; the page shows the plans and one Approve button per approvable plan.
  // (Locator waits: a string predicate would be evaluated in the page, which its CSP forbids.)
  await page.locator('h2#title', { hasText: /— awaiting-approval$/ }).waitFor({ timeout: 90_000 });
  await page.waitForSelector('text=Optimization plans');
  const waiting = await h.ferry.status(deploymentId);
  const approvable = (waiting.plans ?? []).filter((p) => p.withinBudget !== false).length;
  assert.ok(approvable >= 2, 'at least the original and graph-optimize');
  assert.equal(await page.locator('button', { hasText: 'Approve' }).count(), approvable);
  // The deploy stage's options for the default plan, its choice marked, each deployable one with a button.
  const table = waiting.deploymentOptions![waiting.defaultPlan!];
  const chosenRow = page.locator('#deployment-options tr.chosen');
  assert.equal(await chosenRow.count(), 1);
  assert.match(await chosenRow.innerText(), /^✔\s+local\s+local\s+this-machine/);
  assert.equal(
    await page.locator('#deployment-options button', { hasText: 'Deploy with this' }).count(),
    table.options.filter((o) => o.feasible && o.deployable).length,
  );
  await page.locator('tr', { hasText: 'Keep as is' }).locator('button').click();
  await page.locator('h2#title', { hasText: /— live$/ }).waitFor({ timeout: 60_000 });
  const status = await h.ferry.status(deploymentId);
  assert.equal(status.chosenPlan?.plan, 'original');
  assert.equal(status.chosenPlan?.approvedBy, keyName, 'the approver is the signed-in key');
  await page.waitForSelector('text=Benchmark');
  await page.waitForSelector(`text=chosen (approved, by ${keyName})`);
  // The option deployed is named above its table (the plan approved without one: that plan's choice).
  const deployedOption = await page.locator('#deployed-option').innerText();
  assert.ok(deployedOption.includes(status.deploymentDecision!.option), deployedOption);
  assert.match(deployedOption, new RegExp(`on local, ~\\$0\\.00/month \\(approved, by ${keyName}\\)`));

  // The serving card: the one revision takes all the traffic with its replica ready.
  assert.equal(await page.locator('.split div').innerText(), 'default 100%');
  assert.match(await page.locator('tr', { hasText: 'default' }).innerText(), /100%\s+1 \/ 1/);
  assert.match(await page.locator('#serving').innerText(), /fixed replica count/);

  // Traffic, so the monitor (every second) has request rates and latencies to chart.
  for (let i = 0; i < 5; i++) {
    await h.ferry.infer(deploymentId, {
      inputs: [{ name: 'input', shape: [1, 10], datatype: 'FP32', data: Array.from({ length: 10 }, (_, j) => j / 10) }],
    });
  }
  const samples = async (chart: string) => Number(await page.locator(`#${chart}`).getAttribute('data-samples'));
  await eventually('latency samples on the chart', async () => (await samples('chart-latency')) >= 2);
  await eventually('request rates on the chart', async () => (await samples('chart-rate')) >= 1);
  for (const chart of ['chart-rate', 'chart-latency', 'chart-replicas']) {
    assert.equal(await page.locator(`#${chart} canvas`).count(), 1, `${chart} is drawn`);
  }
  // Besides those, only the cost card's charts (client/dashboard/web/costCard.ts).
  const others = await page.locator('.chart canvas').count();
  const costCharts = await page.locator('[id^="chart-cost-"] canvas').count();
  assert.equal(others, 3 + costCharts, 'request rate, latency and replica charts, and the cost charts');
  // The p50 line is drawn: the latency canvas holds pixels of its colour (#1a9850).
  const p50Pixels = (await page.evaluate(`(() => {
    const c = document.querySelector('#chart-latency canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4)
      if (Math.abs(d[i] - 0x1a) < 24 && Math.abs(d[i + 1] - 0x98) < 24 && Math.abs(d[i + 2] - 0x50) < 24 && d[i + 3] > 200) n++;
    return n;
  })()`)) as number;
  assert.ok(p50Pixels > 10, `p50 line pixels: ${p50Pixels}`);

  // A change made elsewhere (as `ferry scale` does) shows on the next refresh.
  await h.ferry.setScaling(deploymentId, { autoscaling: { minReplicas: 1, maxReplicas: 3 } });
  await page.waitForSelector('text=autoscaling 1–3 replicas', { timeout: 10_000 });
  assert.match(await page.content(), new RegExp(status.inferUrl!.replace(/[/.]/g, '\\$&')));

  // The deployment's changes (upload and approval) by this key; then hostile text stored in the audit
  // log, which the audit page must show as text.
  await page.waitForSelector(`td:has-text("${project}/${keyName}")`);
  await new AuditLog(pool).record({
    actor: { project, keyName },
    action: 'deploy',
    deploymentId: HOSTILE[0],
    detail: { note: HOSTILE[2] },
    source: HOSTILE[1],
  });
  await page.click('header a:has-text("audit log")');
  await page.waitForSelector('h2:has-text("Audit log")');
  const row = page.locator('tr', { hasText: HOSTILE[1] });
  await row.waitFor();
  const cells = await row.locator('td').allTextContents();
  assert.ok(
    cells.includes(HOSTILE[0]) && cells.includes(HOSTILE[1]) && cells.includes(`note=${HOSTILE[2]}`),
    String(cells),
  );
  assert.equal(await injectedElements(page), 0);
  assert.equal((await page.locator('tr', { hasText: 'approve' }).count()) >= 1, true);

  // The list shows the new run, and the key's sign-out forgets the key.
  await page.click('header a:has-text("deployments")');
  await page.waitForSelector(`a:has-text("${deploymentId}")`);
  await page.click('button:has-text("sign out")');
  await page.waitForSelector('.signin');
  assert.equal(await page.evaluate(`sessionStorage.length`), 0);
  assert.deepEqual(problems, []);
  await page.close();
  await h.ferry.undeploy(deploymentId);
});
