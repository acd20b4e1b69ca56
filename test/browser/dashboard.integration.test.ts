/**
 * The dashboard in a real browser: a review-mode deployment shows its stages and plans, the Approve
 * button sends the validated Update, and the page follows the run until it is live with its charts.
 */
// biome-ignore-all lint/performance/useDomNodeTextContent: these are Playwright's Locator.innerText(), not the DOM property; the rendered text (cells apart) is what is asserted
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { startApiServer } from '../../client/api/server';
import { launchBrowser } from '../helpers/browser';
import { eventually, type FerryHarness, freePort, startHarness } from '../helpers/ferryHarness';

let h: FerryHarness;
let api: { url: string; close(): Promise<void> };
let browser: Browser;
before(async () => {
  h = await startHarness('browser');
  await h.startWorker();
  api = await startApiServer(h.config, await freePort());
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await api?.close();
  await h?.close();
});

test('approve a plan from the dashboard and watch the deployment go live', async () => {
  const name = `ui-${h.runId}`;
  const started = await h.ferry.deploy(
    await h.writeModel(name, { inputDim: 10, hiddenDims: [20], outputDim: 4, seed: 12 }),
    {
      model: name,
      mode: 'review',
      approvalTimeoutMs: 10 * 60_000,
      monitor: { intervalMs: 1000, idleHibernateMs: 10 * 60_000 },
    },
  );
  await eventually(
    'awaiting approval',
    async () => (await h.ferry.status(started.deploymentId)).phase === 'awaiting-approval',
  );

  const page = await browser.newPage();
  await page.goto(`${api.url}/deployments/${started.deploymentId}`);
  await page.waitForSelector('text=Optimization plans');
  assert.match(await page.locator('h2#title').innerText(), /awaiting-approval/);
  const approveButtons = page.locator('button', { hasText: 'Approve' });
  // The plans are the measured candidates; only those within the accuracy budget can be approved.
  const waiting = await h.ferry.status(started.deploymentId);
  const approvable = (waiting.plans ?? []).filter((p) => p.withinBudget !== false).length;
  assert.ok(approvable >= 2, 'at least the original and graph-optimize');
  assert.equal(await approveButtons.count(), approvable, 'one Approve button per plan within the budget');

  // Approve "original": the row whose code cell says original.
  await page.locator('tr', { hasText: 'Keep as is' }).locator('button').click();
  // A string, evaluated in the page: the test's tsconfig has no DOM types.
  await page.waitForFunction(`document.getElementById('title')?.textContent?.endsWith('live')`, undefined, {
    timeout: 60_000,
  });

  const status = await h.ferry.status(started.deploymentId);
  assert.equal(status.chosenPlan?.plan, 'original');
  assert.equal(status.chosenPlan?.approvedBy, 'dashboard');
  await page.waitForSelector('text=Benchmark');
  // Traffic, so the monitor (every second here) has request counts and interval latencies to chart.
  for (let i = 0; i < 5; i++) {
    await h.ferry.infer(started.deploymentId, {
      inputs: [{ name: 'input', shape: [1, 10], datatype: 'FP32', data: Array.from({ length: 10 }, (_, j) => j / 10) }],
    });
  }
  // Charts replace "No samples yet." once samples exist: one requests line, then p50 and p95 lines.
  await page.waitForFunction(`document.querySelectorAll('svg polyline').length >= 4`, undefined, { timeout: 30_000 });
  assert.equal(await page.locator('svg').count(), 3, 'request, latency and replica charts');

  // The serving card: the one revision takes all the traffic with its replica ready; a scaling change made
  // through the SDK (as `ferry scale` does) shows on the next refresh.
  assert.equal(await page.locator('.split div').innerText(), 'default 100%');
  assert.match(await page.locator('tr', { hasText: 'default' }).innerText(), /100%\s+1 \/ 1/);
  assert.match(await page.locator('#serving').innerText(), /fixed replica count/);
  await h.ferry.setScaling(started.deploymentId, { autoscaling: { minReplicas: 1, maxReplicas: 3 } });
  await page.waitForSelector('text=autoscaling 1–3 replicas', { timeout: 10_000 });
  assert.match(await page.content(), new RegExp(status.inferUrl!.replace(/[/.]/g, '\\$&')));

  const index = await browser.newPage();
  await index.goto(api.url);
  await index.waitForSelector(`a:has-text("${started.deploymentId}")`);
  await h.ferry.undeploy(started.deploymentId);
});
