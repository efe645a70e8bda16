// The console in a real browser (chromium through playwright-core), run by scripts/browser.sh,
// which starts the server and the carrier simulator and passes BASE, KEY (an operator's),
// REP_KEY (rep cara's), OWNER_KEY and CHROMIUM.
// 1. An operator signs in, finds a lead, clicks pause and sees the paused badge appear live
//    (the button swaps nothing itself: only the server-sent event's refresh can show it),
//    and the API says paused.
// 2. Rep cara signs in and opens her queue; a lead arrives (nobody was available, so it is owed
//    a callback) and appears live; she sets herself available in the header, clicks call now,
//    and sees the conversation entry on the lead's timeline when the simulator bridges it; she
//    texts the lead from its page (the conversation is taken over, shown there) and snoozes it.
// 3. Every console page, light and dark, at 1280 px and at 375 px wide: axe-core finds no
//    serious or critical violation, and nothing scrolls sideways on the phone.
// Screenshots are kept as artifacts and for the operator guide.
import { chromium } from 'playwright-core';
import { copyFileSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const { BASE, KEY, REP_KEY, OWNER_KEY, CHROMIUM, ARTIFACTS = '.', DOC_IMAGES } = process.env;
const fail = (message) => { console.error(`browser test failed: ${message}`); process.exitCode = 1; };
const here = dirname(fileURLToPath(import.meta.url));
// Evaluated through the DevTools protocol, which the page's CSP does not govern: the console's
// own policy stays exactly as served.
const AXE = readFileSync(join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');

/** A screenshot kept as an artifact; `doc` ones also go to the operator guide's images. */
async function shot(page, name, doc = true) {
  const path = join(ARTIFACTS, name);
  await page.screenshot({ path, fullPage: true });
  if (DOC_IMAGES && doc) copyFileSync(path, join(DOC_IMAGES, name));
}

async function signIn(page, key) {
  await page.goto(`${BASE}/console/login`);
  await page.fill('input[name=api_key]', key);
  await page.click('form[action="/console/login"] button[type=submit]');
  await page.waitForURL(`${BASE}/console`);
}

const api = (path, init = {}) => fetch(`${BASE}${path}`, {
  ...init,
  headers: { authorization: `Bearer ${OWNER_KEY}`, 'content-type': 'application/json' },
});

/** axe-core on the page as it is: serious and critical violations fail the test. */
async function audit(page, what) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE);
  const violations = await page.evaluate(async () => (await window.axe.run(document)).violations
    .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) })));
  for (const v of violations.filter((v) => ['serious', 'critical'].includes(v.impact))) {
    fail(`${what}: axe ${v.impact} ${v.id} at ${v.nodes.join(', ')}`);
  }
}

async function operatorPausesALead(browser) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  await page.goto(`${BASE}/console`);
  await page.waitForURL(`${BASE}/console/login`);
  await shot(page, 'console-sign-in.png');
  await signIn(page, KEY);

  const row = page.locator('tr[data-id]', { hasText: 'Ana Lima' });
  await row.waitFor();
  const id = await row.getAttribute('data-id');
  await shot(page, 'console-list.png');
  if (await row.locator('.badge.paused').count() !== 0) fail('the lead was paused before the click');

  await row.locator('button', { hasText: 'pause' }).click();
  // Waits for the live update; fails after 10 s.
  await page.locator(`tr[data-id="${id}"] .badge.paused`).waitFor({ timeout: 10_000 });
  await shot(page, 'console-paused.png');

  const body = await (await api(`/v1/opportunities/${id}`)).json();
  if (body.paused !== true) fail(`the API says paused = ${body.paused}`);

  await page.locator(`tr[data-id="${id}"] a`).click();
  await page.locator('h2', { hasText: 'Timeline' }).waitFor();
  await shot(page, 'console-detail.png');
  await page.close();
  return id;
}

async function repCallsALeadFromTheQueue(browser) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  await signIn(page, REP_KEY);
  await page.locator('#me .badge.away').waitFor();
  await page.goto(`${BASE}/console/queue`);
  const created = await api('/v1/opportunities', {
    method: 'POST',
    body: JSON.stringify({
      external_id: 'browser-callback', team: 'west',
      contact: { name: 'Carla Callback', phone: '+14155550109', timezone: 'America/Los_Angeles',
        consent: { voice: true, sms: true } },
      sla: { first_touch_seconds: 900 },
    }),
  });
  if (created.status !== 201) fail(`creating the lead answered ${created.status}`);
  const lead = (await created.json()).id;
  // Arrives live: cara was away, so the lead heard the callback promise and is owed a call.
  const row = page.locator(`tr[data-id="${lead}"]`);
  await row.waitFor({ timeout: 30_000 });
  await shot(page, 'console-queue.png');

  await page.selectOption('#my-status', 'available');
  await page.click('#set-status');
  await page.locator('#me .badge.available').waitFor({ timeout: 10_000 });
  const reps = await (await api('/v1/reps')).json();
  const cara = reps.items.find((r) => r.name === 'cara');
  if (cara?.status !== 'available') fail(`the API says cara is ${cara?.status}`);

  // The lead's own call must be over before cara's may start; then call now.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const o = await (await api(`/v1/opportunities/${lead}`)).json();
    if (o.live_call === null && o.active_call === null) break;
    if (Date.now() > deadline) { fail('the lead\'s first call never ended'); break; }
    await new Promise((r) => setTimeout(r, 200));
  }
  await row.locator('button.call').click();
  await page.waitForURL(`${BASE}/console/opportunities/${lead}`);
  await page.locator('#panel td strong', { hasText: /^conversation$/ }).first().waitFor({ timeout: 30_000 });
  await shot(page, 'console-conversation.png', false);

  // A text from the lead's page takes the conversation over; a snooze shows who and until when.
  await page.fill('form[action$="/text"] input[name=body]', 'Carla, cara here: thanks for the chat!');
  await page.click('form[action$="/text"] button[type=submit]');
  await page.waitForURL(`${BASE}/console/opportunities/${lead}`);
  await page.locator('#takeover', { hasText: 'cara' }).waitFor({ timeout: 10_000 });
  await page.selectOption('form[action$="/snooze"] select[name=for]', '1h');
  await page.click('form[action$="/snooze"] button[type=submit]');
  await page.waitForURL(`${BASE}/console/opportunities/${lead}`);
  await page.locator('#snoozed', { hasText: 'cara' }).waitFor({ timeout: 10_000 });
  const taken = await (await api(`/v1/opportunities/${lead}`)).json();
  if (taken.takeover?.by !== 'cara') fail(`the API says the takeover is ${JSON.stringify(taken.takeover)}`);
  await page.close();
  return lead;
}

async function everyPageIsAccessibleAndFitsAPhone(browser, id) {
  const pages = ['/console', '/console/queue', '/console/dashboard', `/console/opportunities/${id}`];
  for (const scheme of ['light', 'dark']) {
    for (const width of [1280, 375]) {
      const context = await browser.newContext({ viewport: { width, height: 800 }, colorScheme: scheme });
      const page = await context.newPage();
      await page.goto(`${BASE}/console/login`);
      await audit(page, `/console/login ${scheme} ${width}px`);
      await signIn(page, REP_KEY);
      for (const path of pages) {
        await page.goto(`${BASE}${path}`);
        const what = `${path} ${scheme} ${width}px`;
        await audit(page, what);
        const wide = await page.evaluate(() => document.documentElement.scrollWidth);
        if (wide > width) fail(`${what}: the page is ${wide} px wide, wider than the screen`);
      }
      if (width === 375) {
        await page.goto(`${BASE}/console`);
        await shot(page, `console-phone-${scheme}.png`, scheme === 'light');
      }
      if (width === 1280 && scheme === 'dark') {
        await page.goto(`${BASE}/console/dashboard`);
        await shot(page, 'console-dashboard-dark.png');
      }
      await context.close();
    }
  }
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
try {
  const paused = await operatorPausesALead(browser);
  const called = await repCallsALeadFromTheQueue(browser);
  await everyPageIsAccessibleAndFitsAPhone(browser, called);
  if (!process.exitCode) {
    console.log(`browser test passed: ${paused} paused live; ${called} called from the queue and bridged; every page passes axe`);
  }
} catch (e) {
  fail(e.message);
} finally {
  await browser.close();
}
