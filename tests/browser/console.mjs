// The operator console in a real browser (chromium through playwright-core): sign in with an
// operator's key, find a lead, click pause, see the paused badge appear live (the button swaps
// nothing itself: only the server-sent event's refresh can show it), and check through the
// API that the lead is paused. Screenshots are kept as artifacts and for the operator guide.
// Run by scripts/browser.sh, which starts the server and passes BASE, KEY and CHROMIUM.
import { chromium } from 'playwright-core';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';

const { BASE, KEY, CHROMIUM, ARTIFACTS = '.', DOC_IMAGES } = process.env;
const fail = (message) => { console.error(`browser test failed: ${message}`); process.exitCode = 1; };

async function shot(page, name) {
  const path = join(ARTIFACTS, name);
  await page.screenshot({ path, fullPage: true });
  if (DOC_IMAGES) copyFileSync(path, join(DOC_IMAGES, name));
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  await page.goto(`${BASE}/console`);
  await page.waitForURL(`${BASE}/console/login`);
  await shot(page, 'console-sign-in.png');
  await page.fill('input[name=api_key]', KEY);
  await page.click('form[action="/console/login"] button[type=submit]');
  await page.waitForURL(`${BASE}/console`);

  const row = page.locator('tr[data-id]', { hasText: 'Ana Lima' });
  await row.waitFor();
  const id = await row.getAttribute('data-id');
  await shot(page, 'console-list.png');
  if (await row.locator('.badge.paused').count() !== 0) fail('the lead was paused before the click');

  await row.locator('button', { hasText: 'pause' }).click();
  // Waits for the live update; fails after 10 s.
  await page.locator(`tr[data-id="${id}"] .badge.paused`).waitFor({ timeout: 10_000 });
  await shot(page, 'console-paused.png');

  const answer = await fetch(`${BASE}/v1/opportunities/${id}`, { headers: { authorization: `Bearer ${KEY}` } });
  const body = await answer.json();
  if (body.paused !== true) fail(`the API says paused = ${body.paused}`);

  await page.locator(`tr[data-id="${id}"] a`).click();
  await page.locator('h2', { hasText: 'Timeline' }).waitFor();
  await shot(page, 'console-detail.png');
  if (!process.exitCode) console.log(`browser test passed: ${id} paused live and through the API`);
} catch (e) {
  fail(e.message);
} finally {
  await browser.close();
}
