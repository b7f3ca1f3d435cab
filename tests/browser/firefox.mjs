// Drives Debian's Firefox ESR (headless, through puppeteer-core over WebDriver BiDi;
// no browser download) through tollgate's paywall, which runs tollgate.js, for
// tests/firefox.rs: the library's hash check (WebCrypto), its contract dialog, the
// claim, the manual instructions (no wallet in this browser), status polling, the
// receipt and the way back to the resource.
//
//   node tests/browser/firefox.mjs CONFIG_JSON
//
// CONFIG_JSON: {url, summary, price, shots, jcs: {input, canonical}}.
//
// Line protocol (stdout, one event a line):
//   SCREENSHOT <path>          a PNG was written (the contract dialog, the unlocked page)
//   VERSION <browser version>  Firefox is up
//   JCS_OK                     tollgate.jcs in Firefox agrees with the Rust canonicaliser
//   ADDRESS <0x…> <amount>     the manual instructions: the driver pays, mines, says PAID
//   UNLOCKED                   the library opened the resource after the payment
//   DONE / FAIL <reason>
// Every wait is bounded; nothing sleeps for a fixed time.

import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { PAID_MS, STEP_MS, expectInput, fail, firstLine, log, out, run, step } from './harness.mjs';

async function text(page, selector) {
  return page.$eval(selector, (e) => e.textContent.trim());
}

async function screenshot(page, dir, name) {
  const file = path.join(dir, name);
  await step(`screenshot ${name}`, STEP_MS, () => page.screenshot({ path: file, fullPage: true }));
  out(`SCREENSHOT ${file}`);
}

async function scenario(browser, cfg) {
  const resourcePath = new URL(cfg.url).pathname;
  const page = await browser.newPage();
  page.setDefaultTimeout(STEP_MS);
  const errors = [];
  page.on('pageerror', (e) => {
    errors.push(firstLine(e));
    log(`[firefox pageerror] ${e && e.stack ? e.stack : e}`);
  });
  page.on('console', (m) => log(`[firefox console.${m.type()}] ${m.text()}`));
  page.on('response', (r) => log(`[firefox http] ${r.status()} ${r.request().method()} ${r.url()}`));

  const resp = await step('open the priced page', STEP_MS, () => page.goto(cfg.url));
  if (resp.status() !== 402) fail(`the priced page answered ${resp.status()}, expected 402`);
  const h1 = await text(page, 'h1');
  if (h1 !== cfg.summary) fail(`paywall <h1> is ${JSON.stringify(h1)}`);
  const loaded = await page.evaluate(() => !!(window.tollgate && window.taler && window.taler.offerContractFrom));
  if (!loaded) fail('tollgate.js did not load in Firefox');
  const jcs = await page.evaluate((input) => tollgate.jcs(JSON.parse(input)), cfg.jcs.input);
  if (jcs !== cfg.jcs.canonical) fail(`tollgate.jcs gives ${JSON.stringify(jcs)}, Rust ${JSON.stringify(cfg.jcs.canonical)}`);
  out('JCS_OK');

  await step('click "Get payment address"', STEP_MS, () => page.click('#pay-form button'));
  await step('the contract dialog (its hash checked in Firefox)', STEP_MS, () =>
    page.waitForSelector('#tollgate-dialog[data-phase="contract"]', { visible: true }),
  );
  await screenshot(page, cfg.shots, 'firefox-dialog.png');
  await step('click Confirm', STEP_MS, () => page.click('#tollgate-confirm'));
  await step('the payment instructions', STEP_MS, () =>
    page.waitForFunction(() => /^0x[0-9a-fA-F]{40}$/.test((document.getElementById('tollgate-address') || {}).textContent?.trim() || '')),
  );
  const address = await text(page, '#tollgate-address');
  const amount = await text(page, '#tollgate-manual-amount');
  if (amount !== cfg.price) fail(`the instructions ask for ${amount}, expected ${cfg.price}`);
  const qrLoaded = await step('the QR image loads', STEP_MS, () =>
    page.waitForFunction(() => {
      const img = document.getElementById('tollgate-qr');
      return !!img && img.complete && img.naturalWidth > 0;
    }),
  );
  if (!qrLoaded) fail('the QR image did not load');

  const unlocked = page.waitForResponse(
    (r) => r.request().isNavigationRequest() && new URL(r.url()).pathname === resourcePath && r.status() === 200,
    { timeout: 0 },
  );
  unlocked.catch(() => {});
  out(`ADDRESS ${address} ${amount}`);
  await expectInput('PAID');
  const nav = await step('the library opens the resource after the payment', PAID_MS, () => unlocked).catch(async (e) => {
    const status = await text(page, '#tollgate-status').catch(() => '?');
    fail(`${e.message} (status "${status}")`);
  });
  const body = await nav.text();
  if (!body.includes('"target"')) fail(`the origin's content is not shown: ${body.slice(0, 200)}`);
  await step('the resource page', STEP_MS, () => page.waitForFunction((p) => location.pathname === p, {}, resourcePath));
  await screenshot(page, cfg.shots, 'firefox-unlocked.png');
  if (errors.length) fail(`uncaught JavaScript error(s): ${errors.join(' | ')}`);
  out('UNLOCKED');
}

run(
  async (browser) => {
    const cfg = JSON.parse(process.argv[2] || 'null');
    if (!cfg || !cfg.url || !cfg.shots) fail('usage: node firefox.mjs CONFIG_JSON');
    fs.mkdirSync(cfg.shots, { recursive: true });
    out(`VERSION ${await browser.version()}`);
    await scenario(browser, cfg);
  },
  () =>
    puppeteer.launch({
      browser: 'firefox',
      executablePath: process.env.TOLLGATE_FIREFOX || '/usr/bin/firefox-esr',
      headless: true,
    }),
);
