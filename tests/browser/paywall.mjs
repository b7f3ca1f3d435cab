// Drives Debian's headless Chromium through tollgate's paywall, for tests/browser.rs.
//
//   node tests/browser/paywall.mjs URL SUMMARY PRICE
//
// URL is a priced page on a running tollgate whose public_url is the address the
// browser reaches it at; SUMMARY and PRICE are what its paywall must show.
//
// Line protocol. stdout (one event a line, nothing else is printed there):
//   SCREENSHOT <path>           a PNG was written (paywall, contract dialog, payment
//                               instructions, no-JS instructions page)
//   ADDRESS <0x…> / AMOUNT <d>  the JavaScript paywall shows where to pay: pay it
//   UNLOCKED                    the paywall noticed the payment and opened the resource
//   REPLAYED                    a new tab in the same browser opens it (cookie replay)
//   STRANGER402                 a fresh browser context still gets the paywall
//   NOJS_ADDRESS / NOJS_AMOUNT  the same without JavaScript: the instructions page
//   NOJS_UNLOCKED               "I have paid: unlock" led to the resource
//   NOJS_RECLAIMED              that browser, its receipt cookie gone, opens its fulfillment
//                               URL, claims again (its claim cookie proves it) and unlocks
//   NOJS_STRANGER_OFFER         a stranger without JavaScript opening that fulfillment URL
//                               is refused the claim and led to the offer page
//   STRANGER_ADDRESS / _AMOUNT  a stranger with JavaScript is led from it to the offer and
//                               claims a contract of their own there: pay it
//   STRANGER_UNLOCKED           the stranger's own payment opened the resource
//   DONE                        all passed; exit status 0
//   FAIL <reason>               a step failed or timed out; exit status 1
// stdin: the driver writes `PAID` once it has paid and mined the confirmations,
// after each ADDRESS/AMOUNT pair (NOJS_ and STRANGER_ ones too). Details (HTTP log, console, page errors) go to
// stderr. Every wait is bounded; nothing sleeps for a fixed time.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  PAID_MS, STEP_MS, checkNoPageErrors, expectInput, fail, firstLine, log, navigationTo, out, run, screenshot, step, text,
  watch,
} from './harness.mjs';

// ---- checks --------------------------------------------------------------------

/** Checks `page` (just loaded from `resp`) is the 402 paywall for SUMMARY at PRICE. */
async function expectPaywall(page, resp, summary, price, where) {
  if (!resp) fail(`${where}: no response for the priced page`);
  if (resp.status() !== 402) fail(`${where}: priced page answered ${resp.status()}, expected 402`);
  const ct = resp.headers()['content-type'] ?? '';
  if (!ct.startsWith('text/html')) fail(`${where}: 402 content-type is ${JSON.stringify(ct)}, expected HTML`);
  const h1 = await text(page, 'h1');
  if (h1 !== summary) fail(`${where}: paywall <h1> is ${JSON.stringify(h1)}, expected ${JSON.stringify(summary)}`);
  const shown = await text(page, '.price');
  if (shown !== `${price} 0xBTC`) fail(`${where}: price shows ${JSON.stringify(shown)}, expected "${price} 0xBTC"`);
  const title = await page.title();
  if (!title.includes('Payment required')) fail(`${where}: title is ${JSON.stringify(title)}`);
  const button = page.getByRole('button', { name: 'Get payment address' });
  if (!(await button.isVisible())) fail(`${where}: the "Get payment address" button is not visible`);
}

/** Checks a navigation response and its page are the origin's echo of `resourcePath`. */
async function expectOrigin(page, resp, resourcePath, where) {
  if (resp.status() !== 200) {
    const body = (await resp.text().catch(() => '')).slice(0, 300);
    fail(`${where}: ${resp.url()} answered ${resp.status()}, expected 200 from the origin: ${body}`);
  }
  const shown = await step(`${where}: read the page`, STEP_MS, () => page.locator('body').textContent());
  if (!shown || !shown.includes('"target"')) {
    fail(`${where}: the page does not show the origin's content: ${JSON.stringify((shown ?? '').slice(0, 200))}`);
  }
  let echo;
  try {
    echo = JSON.parse(await resp.text());
  } catch (e) {
    fail(`${where}: the origin's answer is not JSON: ${firstLine(e)}`);
  }
  if (echo.method !== 'GET') fail(`${where}: the origin saw method ${echo.method}`);
  if (new URL(echo.target, 'http://x').pathname !== resourcePath) {
    fail(`${where}: the origin saw target ${JSON.stringify(echo.target)}, expected ${resourcePath}`);
  }
  if (echo.target.includes('tollgate_contract')) fail(`${where}: tollgate_contract reached the origin: ${echo.target}`);
  const leaked = (echo.headers || []).filter(
    ([k, v]) => k === 'authorization' || (k === 'cookie' && v.includes('tollgate_receipt')),
  );
  if (leaked.length) fail(`${where}: the receipt reached the origin: ${JSON.stringify(leaked)}`);
}

async function expectReceiptCookie(context, where) {
  const cookies = await context.cookies();
  const c = cookies.find((k) => k.name === 'tollgate_receipt');
  if (!c) fail(`${where}: no tollgate_receipt cookie (cookies: ${cookies.map((k) => k.name).join(', ') || 'none'})`);
  if (!c.httpOnly) fail(`${where}: the tollgate_receipt cookie is not HttpOnly`);
  if (c.sameSite !== 'Lax') fail(`${where}: the tollgate_receipt cookie is SameSite=${c.sameSite}, expected Lax`);
}

// ---- the scenarios ---------------------------------------------------------------

/**
 * On a page where tollgate.js has opened its contract dialog: checks the dialog,
 * confirms, and checks the manual instructions it then shows (no wallet in this
 * browser): address, amount, EIP-681 link, QR. Returns the address.
 */
async function confirmAndShowInstructions(page, price, shots, where) {
  const dialog = page.locator('#tollgate-dialog[data-phase="contract"]');
  await step(`${where}: wait for the contract dialog`, STEP_MS, () => dialog.waitFor());
  if (shots) await screenshot(page, shots, 'paywall-contract.png');
  await step(`${where}: click Confirm`, STEP_MS, () => page.locator('#tollgate-confirm').click());
  const addressShown = page.locator('#tollgate-address').filter({ hasText: /^\s*0x[0-9a-fA-F]{40}\s*$/ });
  await step(`${where}: wait for the payment instructions`, STEP_MS, () => addressShown.waitFor());
  const address = await text(page, '#tollgate-address');
  const amount = await text(page, '#tollgate-manual-amount');
  if (amount !== price) fail(`${where}: the instructions ask for ${JSON.stringify(amount)}, expected ${price}`);
  // No injected EIP-1193 wallet here: its button must not show.
  if (await page.getByRole('button', { name: 'Pay with browser wallet' }).isVisible()) {
    fail(`${where}: a wallet button without window.ethereum`);
  }
  const qrSrc = (await page.locator('#tollgate-qr').getAttribute('src')) ?? '';
  if (!/\/_tollgate\/[0-9a-f]{16}\/qr\.svg$/.test(qrSrc)) fail(`${where}: QR src is ${JSON.stringify(qrSrc)}`);
  const qr = await step(`${where}: wait for the QR image to load`, STEP_MS, async () => {
    const h = await page.waitForFunction(() => {
      const img = document.getElementById('tollgate-qr');
      if (!img || !img.complete || !img.getAttribute('src')) return false;
      return { width: img.naturalWidth, height: img.naturalHeight };
    });
    return h.jsonValue();
  });
  if (!(qr.width > 0 && qr.height > 0)) fail(`${where}: the QR image did not load (${qrSrc})`);
  const uri = (await page.locator('#tollgate-eip681').getAttribute('href')) ?? '';
  if (!uri.startsWith('ethereum:') || !uri.includes(`/transfer?address=${address}&uint256=`)) {
    fail(`${where}: the EIP-681 link is ${JSON.stringify(uri)}`);
  }
  if (shots) await screenshot(page, shots, 'paywall-live.png');
  checkNoPageErrors(`${where}: before payment`);
  return address;
}

async function withJavaScript(browser, url, summary, price, shots) {
  const resourcePath = new URL(url).pathname;
  const context = await browser.newContext();
  const page = watch(await context.newPage(), 'js');

  const resp = await step('open the priced page', STEP_MS, () => page.goto(url));
  await expectPaywall(page, resp, summary, price, 'paywall');
  await screenshot(page, shots, 'paywall.png');

  await step('click "Get payment address"', STEP_MS, () =>
    page.getByRole('button', { name: 'Get payment address' }).click(),
  );
  // tollgate.js shows the contract first (its hash checked in the browser); nothing is
  // claimed before Confirm.
  const address = await confirmAndShowInstructions(page, price, shots, 'paywall');
  const unlocked = navigationTo(page, resourcePath);
  out(`ADDRESS ${address}`);
  out(`AMOUNT ${price}`);
  await expectInput('PAID');

  const nav = await step('wait for the paywall to open the resource after payment', PAID_MS, () => unlocked).catch(
    async (e) => {
      const s = await text(page, '#tollgate-status').catch(() => '?');
      fail(`${e.message} (page at ${page.url()}, #tollgate-status "${s}")`);
    },
  );
  await step('wait for the resource URL', STEP_MS, () => page.waitForURL((u) => u.pathname === resourcePath));
  await expectOrigin(page, nav, resourcePath, 'after payment');
  await expectReceiptCookie(context, 'after payment');
  checkNoPageErrors('during payment');
  out('UNLOCKED');

  const tab = watch(await context.newPage(), 'replay');
  const again = await step('open the priced page in a new tab', STEP_MS, () => tab.goto(url));
  await expectOrigin(tab, again, resourcePath, 'replay');
  out('REPLAYED');

  const strangerContext = await browser.newContext();
  const stranger = watch(await strangerContext.newPage(), 'stranger');
  const s = await step('open the priced page in a fresh context', STEP_MS, () => stranger.goto(url));
  await expectPaywall(stranger, s, summary, price, 'stranger');
  out('STRANGER402');
  checkNoPageErrors('after unlocking');
  await strangerContext.close();
  await context.close();
}

async function withoutJavaScript(browser, url, summary, price, shots) {
  const resourcePath = new URL(url).pathname;
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = watch(await context.newPage(), 'nojs');

  const resp = await step('open the priced page without JavaScript', STEP_MS, () => page.goto(url));
  await expectPaywall(page, resp, summary, price, 'no-JS paywall');
  if (await page.locator('#tollgate-dialog').count()) fail('no-JS paywall: a tollgate.js dialog without JavaScript');

  const action = (await page.locator('#pay-form').getAttribute('action')) ?? '';
  const contractToken = (await page.locator('#pay-form input[name=contract]').getAttribute('value')) ?? '';
  if (!contractToken) fail('no-JS paywall: the pay form carries no contract token');
  const posted = page.waitForResponse((r) => r.url() === action && r.request().method() === 'POST');
  posted.catch(() => {});
  await step('no-JS: click "Get payment address"', STEP_MS, () =>
    page.getByRole('button', { name: 'Get payment address' }).click(),
  );
  const claim = await step('no-JS: the pay form answers', STEP_MS, () => posted);
  if (claim.status() !== 200) fail(`no-JS: POST ${action} answered ${claim.status()}: ${(await claim.text()).slice(0, 300)}`);
  const addressShown = page.locator('#address').filter({ hasText: /^\s*0x[0-9a-fA-F]{40}\s*$/ });
  await step('no-JS: wait for the instructions page', STEP_MS, () => addressShown.waitFor());
  const address = await text(page, '#address');
  const h1 = await text(page, 'h1');
  const m = /^Send ([0-9.]+) 0xBTC$/.exec(h1);
  if (!m) fail(`no-JS: instructions <h1> is ${JSON.stringify(h1)}`);
  if (m[1] !== price) fail(`no-JS: instructions ask for ${m[1]}, expected ${price}`);
  const unlock = page.getByRole('button', { name: 'I have paid: unlock' });
  if (!(await unlock.isVisible())) fail('no-JS: no "I have paid: unlock" button');
  const statusHref = (await page.getByRole('link', { name: 'Payment status' }).getAttribute('href')) ?? '';
  if (!/\/_tollgate\/[0-9a-f]{16}\/status$/.test(statusHref)) fail(`no-JS: status link is ${JSON.stringify(statusHref)}`);
  await screenshot(page, shots, 'nojs-instructions.png');

  out(`NOJS_ADDRESS ${address}`);
  out(`NOJS_AMOUNT ${m[1]}`);
  await expectInput('PAID');

  // As a person without JavaScript would: watch the self-refreshing status page
  // until it says paid, then press the unlock button on the instructions page.
  const statusPage = watch(await context.newPage(), 'nojs-status');
  await step('no-JS: open the payment status page', STEP_MS, () => statusPage.goto(statusHref));
  await step('no-JS: wait for the status page to say "paid"', PAID_MS, () =>
    statusPage.locator('#state').filter({ hasText: /^paid$/ }).waitFor({ timeout: PAID_MS }),
  ).catch(async (e) => {
    const s = await text(statusPage, '#state').catch(() => '?');
    fail(`${e.message} (state "${s}")`);
  });
  await statusPage.close();

  const opened = navigationTo(page, resourcePath);
  await step('no-JS: click "I have paid: unlock"', STEP_MS, () => unlock.click());
  const nav = await step('no-JS: wait for the resource', STEP_MS, () => opened);
  await step('no-JS: wait for the resource URL', STEP_MS, () => page.waitForURL((u) => u.pathname === resourcePath));
  await expectOrigin(page, nav, resourcePath, 'no-JS unlock');
  await expectReceiptCookie(context, 'no-JS unlock');
  out('NOJS_UNLOCKED');

  // The same browser, its receipt cookie gone (the claim cookie kept), revisits its
  // fulfillment URL and claims again: its claim cookie proves it is the claimer.
  const fulfillment = `${url}?tollgate_contract=${encodeURIComponent(contractToken)}`;
  await context.clearCookies({ name: 'tollgate_receipt' });
  const claimCookies = (await context.cookies()).filter((c) => c.name.startsWith('tollgate_claim_'));
  if (claimCookies.length !== 1) fail(`no-JS: expected one claim cookie, have ${claimCookies.map((c) => c.name)}`);
  if (!claimCookies[0].httpOnly || claimCookies[0].path !== '/_tollgate') {
    fail(`no-JS: claim cookie is ${JSON.stringify(claimCookies[0])}`);
  }
  const back = await step('no-JS: revisit the fulfillment URL', STEP_MS, () => page.goto(fulfillment));
  await expectPaywall(page, back, summary, price, 'no-JS revisit');
  const reposted = page.waitForResponse((r) => r.url() === action && r.request().method() === 'POST');
  reposted.catch(() => {});
  await step('no-JS: claim again', STEP_MS, () => page.getByRole('button', { name: 'Get payment address' }).click());
  const again = await step('no-JS: the repeat claim answers', STEP_MS, () => reposted);
  if (again.status() !== 200) fail(`no-JS: the repeat claim answered ${again.status()}: ${(await again.text()).slice(0, 300)}`);
  const reopened = navigationTo(page, resourcePath);
  await step('no-JS: click "I have paid: unlock" again', STEP_MS, () =>
    page.getByRole('button', { name: 'I have paid: unlock' }).click(),
  );
  const nav2 = await step('no-JS: wait for the resource again', STEP_MS, () => reopened);
  await expectOrigin(page, nav2, resourcePath, 'no-JS repeat claim');
  out('NOJS_RECLAIMED');
  await context.close();
  return fulfillment;
}

/** A stranger without JavaScript opens someone else's fulfillment URL. */
async function strangerWithoutJavaScript(browser, fulfillment, summary, price) {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = watch(await context.newPage(), 'nojs-stranger');
  const resp = await step('no-JS stranger: open the shared fulfillment URL', STEP_MS, () => page.goto(fulfillment));
  await expectPaywall(page, resp, summary, price, 'no-JS stranger');
  const action = (await page.locator('#pay-form').getAttribute('action')) ?? '';
  const posted = page.waitForResponse((r) => r.url() === action && r.request().method() === 'POST');
  posted.catch(() => {});
  await step('no-JS stranger: click "Get payment address"', STEP_MS, () =>
    page.getByRole('button', { name: 'Get payment address' }).click(),
  );
  const refused = await step('no-JS stranger: the claim answers', STEP_MS, () => posted);
  if (refused.status() !== 409) fail(`no-JS stranger: claim answered ${refused.status()}, expected 409`);
  const body = await refused.text();
  if (/claim_token|[0-9a-f]{16}\/receipt/.test(body)) fail(`no-JS stranger: the 409 page shows claim details: ${body}`);
  const offer = page.getByRole('link', { name: 'Go to the offer' });
  const opened = page.waitForResponse((r) => r.request().isNavigationRequest() && new URL(r.url()).pathname.endsWith('/offer'));
  opened.catch(() => {});
  await step('no-JS stranger: follow "Go to the offer"', STEP_MS, () => offer.click());
  const offerPage = await step('no-JS stranger: the offer page', STEP_MS, () => opened);
  if (offerPage.status() !== 200) fail(`no-JS stranger: offer page answered ${offerPage.status()}`);
  const title = await page.title();
  if (!title.startsWith('Offer')) fail(`no-JS stranger: offer page title is ${JSON.stringify(title)}`);
  out('NOJS_STRANGER_OFFER');
  await context.close();
}

/** A stranger with JavaScript opens someone else's fulfillment URL and buys their own. */
async function strangerWithJavaScript(browser, url, fulfillment, summary, price) {
  const resourcePath = new URL(url).pathname;
  const context = await browser.newContext();
  const page = watch(await context.newPage(), 'stranger-js');
  // The paywall of a revisited fulfillment URL runs the seed's executePayment: this
  // browser never accepted that contract, so it goes straight to the offer page.
  const led = page.waitForResponse((r) => r.request().isNavigationRequest() && new URL(r.url()).pathname.endsWith('/offer'));
  led.catch(() => {});
  const resp = await step('stranger: open the shared fulfillment URL', STEP_MS, () => page.goto(fulfillment));
  if (resp.status() !== 402) fail(`stranger: the shared fulfillment URL answered ${resp.status()}, expected 402`);
  const offerPage = await step('stranger: led to the offer page', STEP_MS, () => led);
  if (offerPage.status() !== 200) fail(`stranger: offer page answered ${offerPage.status()}`);
  await step('stranger: the offer page is shown', STEP_MS, () => page.waitForURL((u) => u.pathname.endsWith('/offer')));
  await step('stranger: click "Get payment address" on the offer', STEP_MS, () =>
    page.getByRole('button', { name: 'Get payment address' }).click(),
  );
  const address = await confirmAndShowInstructions(page, price, null, 'stranger');
  const amount = price;
  const unlocked = navigationTo(page, resourcePath);
  out(`STRANGER_ADDRESS ${address}`);
  out(`STRANGER_AMOUNT ${amount}`);
  await expectInput('PAID');
  const nav = await step('stranger: wait for their payment to open the resource', PAID_MS, () => unlocked);
  await expectOrigin(page, nav, resourcePath, 'stranger after paying');
  checkNoPageErrors('stranger');
  out('STRANGER_UNLOCKED');
  await context.close();
}

run(async (browser) => {
  const [url, summary, price] = process.argv.slice(2);
  if (!url || !summary || !price) fail('usage: node paywall.mjs URL SUMMARY PRICE');
  const shots = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-browser-'));
  log(`screenshots in ${shots}`);
  await withJavaScript(browser, url, summary, price, shots);
  const fulfillment = await withoutJavaScript(browser, url, summary, price, shots);
  await strangerWithoutJavaScript(browser, fulfillment, summary, price);
  await strangerWithJavaScript(browser, url, fulfillment, summary, price);
});
