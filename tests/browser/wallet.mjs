// Drives Debian's headless Chromium through tollgate.js (the browser wallet library),
// for tests/wallet_js.rs.
//
//   node tests/browser/wallet.mjs CONFIG_JSON
//
// CONFIG_JSON: {base, rpc, chainId, payer, empty, price, apiPrice, token, shots, jcs}
//   base     tollgate's public_url (the browser reaches it there; the test origin
//            behind it serves the merchant pages under /shop/)
//   rpc      anvil's JSON-RPC URL, chainId its chain id
//   payer    the funded dev account the wallet pays from; empty: a dev account
//            holding no tokens
//   shots    the directory screenshots are written to
//   jcs      {input, canonical}: a JSON text and its RFC 8785 form (from Rust)
//
// The wallet is an IN-PAGE SHIM, not a wallet extension: a small script injected
// with playwright's addInitScript that defines window.ethereum (EIP-1193
// `request({method, params})`) and forwards calls to anvil over HTTP. anvil's dev
// accounts are unlocked, so its eth_sendTransaction really moves tokens on chain.
// Per browser context it can be told to sit on another chain and refuse
// wallet_switchEthereumChain, to reject eth_sendTransaction (EIP-1193 code 4001),
// or to use the empty account. It records every call (window.__shim).
//
// Line protocol. stdout (one event a line, nothing else is printed there):
//   SCREENSHOT <path>            a PNG was written
//   JCS_OK                       tollgate.jcs agrees with the Rust canonicaliser
//   DIALOG <label>               the contract dialog is shown and checked
//   SENT <label> <tx hash>       the shim sent a transaction: the driver checks it
//                                on chain and answers OK
//   CONFIRMING <label> <c>/<r>   the dialog shows the payment confirming: the driver
//                                mines one block and answers MINED
//   BASE_OK                      the library names its own prefix as tollgate's base
//   UNLOCKED <label>             the library opened the paid content
//   STORED / REPLAYED_COOKIE / REPLAYED_STORE / REPLAYED_SEED / REPLAYED_OFFER / CANCELLED / ESCAPED /
//   ALREADY_CLAIMED / SHARED_TO_OFFER / REFUSED_TERMS / REFUSED_HASH / WRONG_CHAIN / REJECTED /
//   INSUFFICIENT / FETCHED / FETCHED_AGAIN       a scenario step passed (see below)
//   PAYWALL_UNLOCKED             (p) tollgate's own paywall, one click through the library
//   MANUAL <address> <amount>    the manual instructions are shown: the driver pays
//                                by hand, mines, and answers PAID
//   MANUAL_UNLOCKED              that payment opened the content
//   EXPIRED_OFFER / EXPIRED_PAYMENT <message>   (scenario "expiry") said in words
//   DONE                         all passed; exit status 0
//   FAIL <reason>                a step failed or timed out; exit status 1
// Details (HTTP log, console, page errors) go to stderr. Every wait is bounded;
// nothing sleeps for a fixed time.

import fs from 'node:fs';
import {
  PAID_MS, STEP_MS, checkNoPageErrors, expectInput, fail, installShim, log, navigationTo, out, run, screenshot, step, text,
  watch,
} from './harness.mjs';

// ---- pages ---------------------------------------------------------------------

async function shim(page) {
  return page.evaluate(() => ({
    calls: window.__shim ? window.__shim.calls.map((c) => c.method) : null,
    switches: window.__shim ? window.__shim.calls.filter((c) => c.method === 'wallet_switchEthereumChain').map((c) => c.params) : [],
    sent: window.__shim ? window.__shim.sent.slice() : null,
  }));
}

/** The merchant page's outcome line (#shop-result once data-done="yes"). */
async function shopResult(page, what) {
  const done = page.locator('#shop-result[data-done="yes"]');
  await step(`${what}: wait for the merchant page's result`, STEP_MS, () => done.waitFor());
  return text(page, '#shop-result');
}

/** Checks the open dialog shows the contract for `resource` at `price`. */
async function expectContractDialog(page, resource, price, base, what) {
  const dialog = page.locator('#tollgate-dialog[data-phase="contract"]');
  await step(`${what}: wait for the contract dialog`, STEP_MS, () => dialog.waitFor());
  const a = await page.evaluate(() => {
    const d = document.getElementById('tollgate-dialog');
    const labelled = document.getElementById(d.getAttribute('aria-labelledby'));
    return {
      open: d.open,
      modal: d.matches(':modal'),
      role: d.getAttribute('role'),
      label: labelled ? labelled.textContent : null,
      focusInside: d.contains(document.activeElement),
      focused: document.activeElement ? document.activeElement.id : null,
      rows: Array.from(d.querySelectorAll('#tollgate-products tbody tr'), (tr) =>
        Array.from(tr.cells, (c) => c.textContent.trim()),
      ),
    };
  });
  if (!a.open || !a.modal) fail(`${what}: the dialog is not an open modal: ${JSON.stringify(a)}`);
  if (a.role !== 'dialog') fail(`${what}: dialog role is ${a.role}`);
  if (a.label !== 'Confirm your purchase') fail(`${what}: dialog is labelled ${JSON.stringify(a.label)}`);
  if (!a.focusInside) fail(`${what}: focus is not inside the dialog (on #${a.focused})`);
  // The same through the accessibility tree.
  const byRole = page.getByRole('dialog', { name: 'Confirm your purchase' });
  if (!(await byRole.isVisible())) fail(`${what}: no visible dialog named "Confirm your purchase"`);
  const summary = await text(page, '#tollgate-summary');
  if (!summary.includes(resource)) fail(`${what}: summary is ${JSON.stringify(summary)}`);
  const amount = await text(page, '#tollgate-amount');
  if (amount !== `${price} 0xBTC`) fail(`${what}: amount shows ${JSON.stringify(amount)}, expected "${price} 0xBTC"`);
  const merchant = await text(page, '#tollgate-merchant');
  if (merchant !== base) fail(`${what}: merchant shows ${JSON.stringify(merchant)}, expected ${base}`);
  const deadline = await page.locator('#tollgate-deadline').getAttribute('datetime');
  const left = Date.parse(deadline) - Date.now();
  if (!(left > 0 && left <= 31 * 60 * 1000)) fail(`${what}: pay deadline ${deadline} is not within the next 30 minutes`);
  if (a.rows.length !== 1 || a.rows[0][1] !== '1' || a.rows[0][2] !== `${price} 0xBTC` || !a.rows[0][0].includes(resource)) {
    fail(`${what}: product lines are ${JSON.stringify(a.rows)}`);
  }
  const hash = await text(page, '#tollgate-hash');
  if (!/[0-9a-f]{64}/.test(hash)) fail(`${what}: the contract hash is not shown: ${JSON.stringify(hash)}`);
  for (const name of ['Confirm', 'Cancel']) {
    if (!(await page.getByRole('button', { name, exact: true }).isVisible())) fail(`${what}: no "${name}" button`);
  }
}

/** The driver checks a sent transaction; then the dialog must show 1/r confirmations. */
async function sentAndConfirmed(page, label, already) {
  await step(`${label}: wait for the shim to send a transaction`, STEP_MS, () =>
    page.waitForFunction((n) => window.__shim && window.__shim.sent.length > n, already),
  );
  const s = await shim(page);
  if (s.sent.length !== already + 1) fail(`${label}: the shim sent ${s.sent.length - already} transactions`);
  out(`SENT ${label} ${s.sent[s.sent.length - 1]}`);
  await expectInput('OK');
  const confirming = page.locator('#tollgate-status').filter({ hasText: /confirming \(1\/\d+ confirmations\)/ });
  await step(`${label}: wait for the dialog to show 1/N confirmations`, STEP_MS, () => confirming.waitFor()).catch(async (e) => {
    fail(`${e.message} (status "${await text(page, '#tollgate-status').catch(() => '?')}")`);
  });
  const status = await text(page, '#tollgate-status');
  const m = /\((\d+\/\d+) confirmations\)/.exec(status);
  const state = await page.locator('#tollgate-dialog').getAttribute('data-state');
  if (state !== 'confirming') fail(`${label}: dialog data-state is ${state}`);
  out(`CONFIRMING ${label} ${m[1]}`);
  await expectInput('MINED');
}

/** Waits for `nav` (to the paid content at `resource`) and checks the page shows it. */
async function expectUnlocked(page, nav, resource, what) {
  const resp = await step(`${what}: wait for the paid content`, PAID_MS, () => nav).catch(async (e) => {
    const status = await text(page, '#tollgate-status').catch(() => '?');
    const err = await text(page, '#tollgate-error').catch(() => '');
    fail(`${e.message} (page at ${page.url()}, status "${status}", error "${err}")`);
  });
  if (resp.status() !== 200) fail(`${what}: ${resp.url()} answered ${resp.status()}`);
  await step(`${what}: the content`, STEP_MS, () => page.locator('#content').waitFor());
  const content = await text(page, '#content');
  if (content !== `Paid content of ${resource}`) fail(`${what}: the page shows ${JSON.stringify(content)}`);
  return resp;
}

// ---- scenarios -------------------------------------------------------------------

function shimFor(cfg, opts = {}) {
  return {
    rpc: cfg.rpc,
    account: opts.account ?? cfg.payer,
    chainId: '0x' + (opts.chainId ?? cfg.chainId).toString(16),
    refuseSwitch: !!opts.refuseSwitch,
    rejectSend: !!opts.rejectSend,
  };
}

async function newContext(browser, cfg, shimOpts) {
  const context = await browser.newContext();
  if (shimOpts) await context.addInitScript(installShim, shimFor(cfg, shimOpts));
  return context;
}

const offerUrl = (cfg, resource, extra = '') => `${cfg.base}/shop/offer.html?resource=${encodeURIComponent(resource)}${extra}`;

/** (a) One click: offer → dialog → Confirm → the shim's transaction → paid → content; then replays. */
async function oneClick(browser, cfg) {
  const resource = '/paid/a.html';
  const context = await newContext(browser, cfg, {});
  const page = watch(await context.newPage(), 'a');

  // The library finds tollgate from its own <script src>, whatever the prefix: served
  // here (by playwright) under another path, it must name that path as its base.
  const lib = await step('fetch tollgate.js', STEP_MS, () => fetch(`${cfg.base}/_tollgate/tollgate.js`).then((r) => r.text()));
  await page.route(`${cfg.base}/prefix-check/**`, (route) =>
    new URL(route.request().url()).pathname.endsWith('/tollgate.js')
      ? route.fulfill({ contentType: 'application/javascript', body: lib })
      : route.fulfill({ contentType: 'text/html', body: '<!doctype html><script>window.taler = { keep: 1 };</script><script src="/prefix-check/deep/pay/tollgate.js"></script>' }),
  );
  await step('open a page including the library under another prefix', STEP_MS, () => page.goto(`${cfg.base}/prefix-check/page.html`));
  // …and adds the seed's names to an existing window.taler without clobbering it.
  const base = await page.evaluate(() => [window.tollgate && tollgate.base, typeof taler.offerContractFrom, typeof taler.executePayment, taler.keep]);
  if (base[0] !== `${cfg.base}/prefix-check/deep/pay` || base[1] !== 'function' || base[2] !== 'function' || base[3] !== 1) {
    fail(`base detection / window.taler: ${JSON.stringify(base)}`);
  }
  await page.unroute(`${cfg.base}/prefix-check/**`);
  out('BASE_OK');

  await step('a: open the merchant API page', STEP_MS, () => page.goto(`${cfg.base}/shop/api.html`));
  const jcs = await page.evaluate((c) => tollgate.jcs(JSON.parse(c.input)), cfg.jcs);
  if (jcs !== cfg.jcs.canonical) fail(`tollgate.jcs gives ${JSON.stringify(jcs)}, Rust ${JSON.stringify(cfg.jcs.canonical)}`);
  out('JCS_OK');

  await step('a: open the merchant offer page', STEP_MS, () => page.goto(offerUrl(cfg, resource)));
  await expectContractDialog(page, resource, cfg.price, cfg.base, 'a');
  if (page.claims !== 0) fail('a: a claim was made before Confirm');
  await screenshot(page, cfg.shots, 'contract-dialog.png');
  out('DIALOG a');

  const unlocked = navigationTo(page, resource);
  await step('a: click Confirm', STEP_MS, () => page.getByRole('button', { name: 'Confirm', exact: true }).click());
  await sentAndConfirmed(page, 'a', 0);
  await expectUnlocked(page, unlocked, resource, 'a');
  if (!new URL(page.url()).searchParams.get('tollgate_contract')) fail(`a: not at the fulfillment URL: ${page.url()}`);
  const fulfillment = page.url();
  await screenshot(page, cfg.shots, 'unlocked.png');
  checkNoPageErrors('a');
  out('UNLOCKED a');

  // The wallet store: one entry, under the contract hash, with the receipt.
  const stored = await page.evaluate(() =>
    Object.keys(localStorage)
      .filter((k) => k.startsWith('tollgate:wallet:'))
      .map((k) => ({ key: k, entry: JSON.parse(localStorage.getItem(k)) })),
  );
  if (stored.length !== 1) fail(`a: the wallet store holds ${stored.length} entries: ${JSON.stringify(stored)}`);
  const e = stored[0].entry;
  if (stored[0].key !== `tollgate:wallet:${e.hash}` || !/^[0-9a-f]{64}$/.test(e.hash)) fail(`a: store key ${stored[0].key}`);
  if (!/^tg1\./.test(e.receipt || '') || e.scope !== resource || !/^[0-9a-f]{16}$/.test(e.payment_id || '') || !e.claim_token) {
    fail(`a: stored entry lacks receipt/scope/payment_id/claim_token: ${JSON.stringify({ ...e, receipt: !!e.receipt, claim_token: !!e.claim_token })}`);
  }
  if (!(e.exp > Date.now() / 1000 + 29 * 86400)) fail(`a: stored receipt expires at ${e.exp}`);
  if (e.state !== 'paid' || !e.tx_hash) fail(`a: stored state ${e.state}, tx ${e.tx_hash}`);
  out('STORED');

  // A new tab: the receipt cookie replays.
  const tab = watch(await context.newPage(), 'a-tab');
  const again = navigationTo(tab, resource);
  await step('a: open the fulfillment URL in a new tab', STEP_MS, () => tab.goto(fulfillment));
  await expectUnlocked(tab, again, resource, 'a new tab');
  out('REPLAYED_COOKIE');

  // Cookies gone (a new session): the fulfillment page's executePayment finds the
  // hash in the wallet store, obtains the cookie again with the claim token, reloads.
  await context.clearCookies();
  const tab2 = watch(await context.newPage(), 'a-store');
  const back = navigationTo(tab2, resource);
  await step('a: open the fulfillment page (executePayment) without cookies', STEP_MS, () =>
    tab2.goto(`${cfg.base}/shop/fulfil.html?u=${encodeURIComponent(fulfillment)}`),
  );
  await expectUnlocked(tab2, back, resource, 'a store replay');
  if ((await shim(tab2)).calls.length !== 0) fail('a: the store replay talked to the wallet');
  if (tab2.claims !== 0) fail('a: the store replay claimed again');
  out('REPLAYED_STORE');

  // The same with the seed's fulfillment page, verbatim: executePayment from <head>.
  await context.clearCookies();
  const tab4 = watch(await context.newPage(), 'a-seed');
  const fourth = navigationTo(tab4, resource);
  const seed = `${cfg.base}/shop/seed.html?h=${e.hash}&p=${encodeURIComponent(`${cfg.base}/_tollgate/pay`)}&o=${encodeURIComponent(offerUrl(cfg, resource))}`;
  await step('a: open the seed\'s fulfillment page without cookies', STEP_MS, () => tab4.goto(seed));
  await expectUnlocked(tab4, fourth, resource, 'a seed replay');
  if ((await shim(tab4)).calls.length !== 0 || tab4.claims !== 0) fail('a: the seed replay claimed or used the wallet');
  out('REPLAYED_SEED');

  // Cookies gone again: the merchant's offer page mints a fresh contract for the same
  // resource; the library replays the stored receipt instead of selling it twice.
  await context.clearCookies();
  const tab3 = watch(await context.newPage(), 'a-offer');
  const third = navigationTo(tab3, resource);
  await step('a: open the offer page again without cookies', STEP_MS, () => tab3.goto(offerUrl(cfg, resource)));
  await expectUnlocked(tab3, third, resource, 'a offer replay');
  if ((await shim(tab3)).calls.length !== 0 || tab3.claims !== 0) fail('a: the offer replay claimed or used the wallet');
  out('REPLAYED_OFFER');
  checkNoPageErrors('a replays');
  return { context, page: tab3, fulfillment };
}

/** (b) Cancel (button, then Escape): nothing claimed, nothing sent. */
async function cancel(context, cfg) {
  const resource = '/paid/b.html';
  const page = watch(await context.newPage(), 'b');
  await step('b: open the offer page', STEP_MS, () => page.goto(offerUrl(cfg, resource)));
  await expectContractDialog(page, resource, cfg.price, cfg.base, 'b');
  await step('b: click Cancel', STEP_MS, () => page.getByRole('button', { name: 'Cancel', exact: true }).click());
  const r = await shopResult(page, 'b');
  if (!r.startsWith('error cancelled')) fail(`b: the page reports ${JSON.stringify(r)}`);
  if (await page.locator('#tollgate-dialog').count()) fail('b: the dialog is still there after Cancel');
  out('CANCELLED');

  await step('b: reload the offer page', STEP_MS, () => page.reload());
  await expectContractDialog(page, resource, cfg.price, cfg.base, 'b again');
  await step('b: press Escape', STEP_MS, () => page.keyboard.press('Escape'));
  const r2 = await shopResult(page, 'b Escape');
  if (!r2.startsWith('error cancelled')) fail(`b: after Escape the page reports ${JSON.stringify(r2)}`);
  if (await page.locator('#tollgate-dialog').count()) fail('b: the dialog is still there after Escape');
  const s = await shim(page);
  if (s.calls.length !== 0 || page.claims !== 0) fail(`b: cancelled, yet ${page.claims} claims and wallet calls ${s.calls}`);
  const stored = await page.evaluate(() => tollgate.wallet.list().filter((e) => e.resource === '/paid/b.html').length);
  if (stored !== 0) fail('b: a cancelled contract is in the wallet store');
  out('ESCAPED');
  await page.close();
}

/** (d) Terms that do not match the announced hash: refused before anything is shown. */
async function refused(context, cfg) {
  const resource = '/paid/d.html';
  const page = watch(await context.newPage(), 'd');
  for (const [tamper, word] of [
    ['terms', 'REFUSED_TERMS'],
    ['hash', 'REFUSED_HASH'],
  ]) {
    await step(`d: open the offer page (tamper=${tamper})`, STEP_MS, () => page.goto(offerUrl(cfg, resource, `&tamper=${tamper}`)));
    const r = await shopResult(page, `d ${tamper}`);
    if (!r.startsWith('error hash_mismatch')) fail(`d ${tamper}: the page reports ${JSON.stringify(r)}`);
    const err = page.locator('#tollgate-error');
    await step(`d ${tamper}: the refusal is shown`, STEP_MS, () => err.waitFor());
    const msg = await text(page, '#tollgate-error');
    if (!/refused/.test(msg) || !/Nothing was paid/.test(msg)) fail(`d ${tamper}: the message is ${JSON.stringify(msg)}`);
    if ((await page.getByRole('alert').count()) !== 1) fail(`d ${tamper}: the refusal is not an alert`);
    if (await page.locator('#tollgate-contract').isVisible()) fail(`d ${tamper}: the refused contract is shown`);
    if (await page.getByRole('button', { name: 'Confirm', exact: true }).isVisible()) fail(`d ${tamper}: Confirm is offered`);
    const s = await shim(page);
    if (s.calls.length !== 0 || page.claims !== 0) fail(`d ${tamper}: refused, yet claims ${page.claims}, wallet calls ${s.calls}`);
    if (tamper === 'terms') await screenshot(page, cfg.shots, 'refused.png');
    out(word);
  }
  await page.close();
}

/** (f) tollgate.fetch from page JavaScript: pays once, then replays without paying. */
async function fetchTwice(context, cfg) {
  const resource = '/api/data.json';
  const page = watch(await context.newPage(), 'f');
  const apiRequests = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === resource) apiRequests.push(r);
  });
  await step('f: open the merchant API page', STEP_MS, () => page.goto(`${cfg.base}/shop/api.html`));
  await page.evaluate((url) => {
    window.call1 = tollgate.fetch(url).then(async (r) => ({ status: r.status, body: await r.text() }), (e) => ({ error: `${e.code}: ${e.message}` }));
  }, resource);
  await expectContractDialog(page, resource, cfg.apiPrice, cfg.base, 'f');
  await step('f: click Confirm', STEP_MS, () => page.getByRole('button', { name: 'Confirm', exact: true }).click());
  await sentAndConfirmed(page, 'f', 0);
  const r1 = await step('f: the first call returns', PAID_MS, () => page.evaluate(() => window.call1));
  if (r1.error || r1.status !== 200) fail(`f: the first call gave ${JSON.stringify(r1)}`);
  if (JSON.parse(r1.body).secret !== 'the paid data') fail(`f: the first call returned ${r1.body}`);
  if (await page.locator('#tollgate-dialog').count()) fail('f: the dialog stayed open after paying');
  if (new URL(page.url()).pathname !== '/shop/api.html') fail(`f: tollgate.fetch navigated to ${page.url()}`);
  const first = apiRequests.length;
  const last = apiRequests[first - 1];
  if (!/^Tollgate tg1\./.test((await last.allHeaders()).authorization || '')) fail('f: the retry carried no receipt');
  out('FETCHED');

  await context.clearCookies(); // the receipt must come from the wallet store, not the cookie
  const r2 = await step('f: the second call', STEP_MS, () =>
    page.evaluate((url) => tollgate.fetch(url).then(async (r) => ({ status: r.status, body: await r.text() })), resource),
  );
  if (r2.status !== 200 || JSON.parse(r2.body).secret !== 'the paid data') fail(`f: the second call gave ${JSON.stringify(r2)}`);
  const second = apiRequests.slice(first);
  if (second.length !== 1) fail(`f: the second call made ${second.length} requests (a 402 on the way?)`);
  if (!/^Tollgate tg1\./.test((await second[0].allHeaders()).authorization || '')) fail('f: the second call sent no receipt up front');
  const s = await shim(page);
  if (s.sent.length !== 1) fail(`f: the shim sent ${s.sent.length} transactions`);
  checkNoPageErrors('f');
  out('FETCHED_AGAIN');
  await page.close();
}

/** (c) A stranger with a shared fulfillment URL: executePayment sends them to the offer; they buy there. */
async function sharedLink(browser, cfg, fulfillment) {
  const resource = new URL(fulfillment).pathname;
  const context = await newContext(browser, cfg, {});
  const page = watch(await context.newPage(), 'c');

  // The stranger's wallet is handed the first buyer's contract URL itself: its terms
  // check out, but the claim is someone else's (409): the library goes to the offer.
  const token = new URL(fulfillment).searchParams.get('tollgate_contract');
  await step('c: open the merchant API page', STEP_MS, () => page.goto(`${cfg.base}/shop/api.html`));
  const toOffer = page.waitForURL((u) => u.pathname === '/_tollgate/offer');
  toOffer.catch(() => {});
  await page.evaluate((u) => {
    window.claimed = taler.offerContractFrom(u).catch((e) => e.code);
  }, `${cfg.base}/_tollgate/contract/${token}`);
  await expectContractDialog(page, resource, cfg.price, cfg.base, 'c claimed');
  await step('c: click Confirm on the claimed contract', STEP_MS, () => page.getByRole('button', { name: 'Confirm', exact: true }).click());
  await step('c: led to the offer page after the 409', STEP_MS, () => toOffer);
  if (new URL(page.url()).searchParams.get('resource') !== resource) fail(`c: offer page ${page.url()}`);
  if (page.claims !== 1) fail(`c: ${page.claims} claims`);
  if ((await shim(page)).calls.length !== 0) fail('c: the wallet was used for a contract someone else claimed');
  out('ALREADY_CLAIMED');

  const led = page.waitForURL((u) => u.pathname === '/shop/offer.html');
  led.catch(() => {});
  await step('c: open the shared link on the fulfillment page', STEP_MS, () =>
    page.goto(`${cfg.base}/shop/fulfil.html?u=${encodeURIComponent(fulfillment)}`),
  );
  await step('c: executePayment leads to the offer page', STEP_MS, () => led);
  out('SHARED_TO_OFFER');
  await expectContractDialog(page, resource, cfg.price, cfg.base, 'c');
  const unlocked = navigationTo(page, resource);
  await step('c: click Confirm', STEP_MS, () => page.getByRole('button', { name: 'Confirm', exact: true }).click());
  await sentAndConfirmed(page, 'c', 0);
  await expectUnlocked(page, unlocked, resource, 'c');
  if (page.url() === fulfillment) fail('c: the stranger landed on the shared fulfillment URL, not their own');
  checkNoPageErrors('c');
  out('UNLOCKED c');
  await context.close();
}

/** Opens the offer for `resource`, confirms, and returns the error the dialog shows. */
async function confirmAndFail(page, cfg, resource, what) {
  await step(`${what}: open the offer page`, STEP_MS, () => page.goto(offerUrl(cfg, resource)));
  await expectContractDialog(page, resource, cfg.price, cfg.base, what);
  await step(`${what}: click Confirm`, STEP_MS, () => page.getByRole('button', { name: 'Confirm', exact: true }).click());
  await step(`${what}: the error is shown`, STEP_MS, () => page.locator('#tollgate-error').waitFor());
  const msg = await text(page, '#tollgate-error');
  const r = await shopResult(page, what);
  return { msg, result: r };
}

/** (e) Wallet on the wrong chain refuses to switch; (h) rejects the payment; (i) has no tokens. */
async function walletRefusals(browser, cfg) {
  const want = `0x${cfg.chainId.toString(16)}`;
  {
    const context = await newContext(browser, cfg, { chainId: 1, refuseSwitch: true });
    const page = watch(await context.newPage(), 'e');
    const { msg, result } = await confirmAndFail(page, cfg, '/paid/e.html', 'e');
    if (!result.startsWith('error wrong_chain')) fail(`e: the page reports ${JSON.stringify(result)}`);
    if (!/refused to switch/.test(msg) || !/Nothing was sent/.test(msg) || !msg.includes(String(cfg.chainId))) fail(`e: the message is ${JSON.stringify(msg)}`);
    const s = await shim(page);
    if (s.switches.length !== 1 || s.switches[0][0].chainId !== want) fail(`e: switch requests ${JSON.stringify(s.switches)}`);
    if (s.calls.includes('eth_sendTransaction') || s.sent.length) fail(`e: a transaction was sent: ${s.calls}`);
    await screenshot(page, cfg.shots, 'wrong-chain.png');
    out('WRONG_CHAIN');
    await context.close();
  }
  {
    const context = await newContext(browser, cfg, { rejectSend: true });
    const page = watch(await context.newPage(), 'h');
    const { msg, result } = await confirmAndFail(page, cfg, '/paid/h.html', 'h');
    if (!result.startsWith('error rejected')) fail(`h: the page reports ${JSON.stringify(result)}`);
    if (!/rejected the payment/.test(msg)) fail(`h: the message is ${JSON.stringify(msg)}`);
    const s = await shim(page);
    if (s.calls.filter((c) => c === 'eth_sendTransaction').length !== 1 || s.sent.length) fail(`h: wallet calls ${s.calls}`);
    out('REJECTED');
    await context.close();
  }
  {
    const context = await newContext(browser, cfg, { account: cfg.empty });
    const page = watch(await context.newPage(), 'i');
    const { msg, result } = await confirmAndFail(page, cfg, '/paid/i.html', 'i');
    if (!result.startsWith('error insufficient_balance')) fail(`i: the page reports ${JSON.stringify(result)}`);
    if (!msg.includes(`holds 0 0xBTC; this costs ${cfg.price} 0xBTC`) || !msg.includes(cfg.empty)) fail(`i: the message is ${JSON.stringify(msg)}`);
    const s = await shim(page);
    if (s.calls.includes('eth_sendTransaction')) fail(`i: a transaction was attempted: ${s.calls}`);
    if (!s.calls.includes('eth_call')) fail(`i: the balance was not checked: ${s.calls}`);
    out('INSUFFICIENT');
    await context.close();
  }
  checkNoPageErrors('wallet refusals');
}

/** (g) No provider: manual instructions (address, amount, EIP-681 link, QR); a reload resumes. */
async function manual(browser, cfg) {
  const resource = '/paid/g.html';
  const context = await newContext(browser, cfg, null);
  const page = watch(await context.newPage(), 'g');
  await step('g: open the offer page', STEP_MS, () => page.goto(offerUrl(cfg, resource)));
  await expectContractDialog(page, resource, cfg.price, cfg.base, 'g');
  await step('g: click Confirm', STEP_MS, () => page.getByRole('button', { name: 'Confirm', exact: true }).click());
  const shown = async (what) => {
    const addr = page.locator('#tollgate-address').filter({ hasText: /^\s*0x[0-9a-fA-F]{40}\s*$/ });
    await step(`${what}: the manual instructions`, STEP_MS, () => addr.waitFor());
    const address = await text(page, '#tollgate-address');
    const amount = await text(page, '#tollgate-manual-amount');
    if (amount !== cfg.price) fail(`${what}: amount ${JSON.stringify(amount)}`);
    const uri = (await page.locator('#tollgate-eip681').getAttribute('href')) ?? '';
    const want = `ethereum:${cfg.token}@${cfg.chainId}/transfer?address=${address}&uint256=${cfg.priceBaseUnits}`;
    if (uri.toLowerCase() !== want.toLowerCase()) fail(`${what}: EIP-681 link ${JSON.stringify(uri)}, expected ${want}`);
    const qrSrc = (await page.locator('#tollgate-qr').getAttribute('src')) ?? '';
    if (!/\/_tollgate\/[0-9a-f]{16}\/qr\.svg$/.test(qrSrc)) fail(`${what}: QR src ${JSON.stringify(qrSrc)}`);
    const qr = await step(`${what}: the QR image loads`, STEP_MS, async () => {
      const h = await page.waitForFunction(() => {
        const img = document.getElementById('tollgate-qr');
        return img && img.complete && img.naturalWidth > 0 ? { w: img.naturalWidth, h: img.naturalHeight } : false;
      });
      return h.jsonValue();
    });
    if (!(qr.w > 0 && qr.h > 0)) fail(`${what}: QR not loaded`);
    if (await page.getByRole('button', { name: 'Pay with browser wallet' }).isVisible()) fail(`${what}: a wallet button without a wallet`);
    return address;
  };
  const address = await shown('g');
  await screenshot(page, cfg.shots, 'manual.png');
  if (page.claims !== 1) fail(`g: ${page.claims} claims`);

  // A reload resumes the same payment (no second claim, the same address).
  await step('g: reload the offer page', STEP_MS, () => page.reload());
  const again = await shown('g after reload');
  if (again !== address) fail(`g: after a reload the address is ${again}, was ${address}`);
  if (page.claims !== 1) fail(`g: the reload claimed again (${page.claims} claims)`);
  const title = await text(page, '#tollgate-title');
  if (title !== 'Payment in progress') fail(`g: resumed dialog title ${JSON.stringify(title)}`);

  const unlocked = navigationTo(page, resource);
  out(`MANUAL ${address} ${await text(page, '#tollgate-manual-amount')}`);
  await expectInput('PAID');
  await expectUnlocked(page, unlocked, resource, 'g');
  checkNoPageErrors('g');
  out('MANUAL_UNLOCKED');
  await context.close();
}

/**
 * (p) The paywall itself (tollgate's 402 page runs the library): "Get payment address"
 * → the contract dialog → Confirm → the shim's one transaction → paid → the content.
 */
async function paywallOneClick(context, cfg) {
  const resource = '/paid/p.html';
  const page = watch(await context.newPage(), 'p');
  const resp = await step('p: open the priced page', STEP_MS, () => page.goto(`${cfg.base}${resource}`));
  if (resp.status() !== 402) fail(`p: the priced page answered ${resp.status()}, expected the 402 paywall`);
  await step('p: click "Get payment address"', STEP_MS, () =>
    page.getByRole('button', { name: 'Get payment address' }).click(),
  );
  await expectContractDialog(page, resource, cfg.price, cfg.base, 'p');
  if (page.claims !== 0) fail('p: a claim was made before Confirm');
  const unlocked = navigationTo(page, resource);
  await step('p: click Confirm', STEP_MS, () => page.getByRole('button', { name: 'Confirm', exact: true }).click());
  await sentAndConfirmed(page, 'p', 0);
  await expectUnlocked(page, unlocked, resource, 'p');
  checkNoPageErrors('p');
  out('PAYWALL_UNLOCKED');
  await page.close();
}

/**
 * (x) Expiry, said in words (a tollgate whose offers and payments expire within
 * seconds): an offer confirmed after its pay deadline (410 on the claim), and a claimed
 * payment nothing arrives for. No wallet: nothing could be sent anyway.
 */
async function expiry(browser, cfg) {
  const context = await newContext(browser, cfg, null);
  const page = watch(await context.newPage(), 'x');
  const errorSays = async (what, re) => {
    const err = page.locator('#tollgate-error').filter({ hasText: re });
    await step(`${what}: wait for the message`, PAID_MS, () => err.waitFor()).catch(async (e) => {
      fail(`${e.message} (error "${await text(page, '#tollgate-error').catch(() => '')}", status "${await text(page, '#tollgate-status').catch(() => '')}")`);
    });
  };
  // An offer whose pay deadline passes before it is confirmed.
  const resp = await step('x: open a priced page', STEP_MS, () => page.goto(`${cfg.base}/paid/x1.html`));
  if (resp.status() !== 402) fail(`x: the priced page answered ${resp.status()}`);
  const deadline = Date.parse(await page.locator('time').getAttribute('datetime'));
  await step('x: the pay deadline passes', 30_000, () =>
    page.waitForFunction((d) => Date.now() > d + 1500, deadline, { polling: 100, timeout: 30_000 }),
  );
  await step('x: click "Get payment address"', STEP_MS, () => page.getByRole('button', { name: 'Get payment address' }).click());
  const confirm = page.locator('#tollgate-confirm');
  if (await confirm.isVisible().catch(() => false)) await confirm.click();
  await errorSays('x: expired offer', /expired/i);
  out(`EXPIRED_OFFER ${await text(page, '#tollgate-error')}`);

  // A payment claimed in time, for which nothing arrives before it expires.
  await step('x: open another priced page', STEP_MS, () => page.goto(`${cfg.base}/paid/x2.html`));
  await step('x: click "Get payment address" again', STEP_MS, () => page.getByRole('button', { name: 'Get payment address' }).click());
  await step('x: click Confirm', STEP_MS, () => page.locator('#tollgate-confirm').click());
  await step('x: the instructions', STEP_MS, () => page.locator('#tollgate-address').filter({ hasText: /0x[0-9a-fA-F]{40}/ }).waitFor());
  await errorSays('x: expired payment', /expired before anything arrived/);
  out(`EXPIRED_PAYMENT ${await text(page, '#tollgate-error')}`);
  checkNoPageErrors('x');
  await context.close();
}

run(async (browser) => {
  const cfg = JSON.parse(process.argv[2] || 'null');
  if (!cfg || !cfg.base || !cfg.shots) fail('usage: node wallet.mjs CONFIG_JSON');
  fs.mkdirSync(cfg.shots, { recursive: true });
  log(`screenshots in ${cfg.shots}`);
  if (cfg.scenario === 'expiry') {
    await expiry(browser, cfg);
    return;
  }
  const a = await oneClick(browser, cfg);
  await paywallOneClick(a.context, cfg);
  await cancel(a.context, cfg);
  await refused(a.context, cfg);
  await fetchTwice(a.context, cfg);
  await sharedLink(browser, cfg, a.fulfillment);
  await walletRefusals(browser, cfg);
  await manual(browser, cfg);
  await a.context.close();
});
