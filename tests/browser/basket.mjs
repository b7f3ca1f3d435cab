// Drives Debian's headless Chromium through tollgate.js's shopping basket
// (webinos.payment, SPEC sections 8 and 9), for tests/basket_browser.rs.
//
//   node tests/browser/basket.mjs CONFIG_JSON
//
// CONFIG_JSON: {base, rpc, chainId, payer, shopId}
//   base     tollgate's public_url (the test origin behind it serves the shop pages
//            under /shop/ and the album pages under /albums/)
//   rpc      anvil's JSON-RPC URL, chainId its chain id
//   payer    the funded dev account the in-page wallet pays from
//   shopId   the configured [basket] shop_id
//
// The wallet is an IN-PAGE SHIM, not a wallet extension (as in wallet.mjs): injected
// with playwright's addInitScript (harness.mjs installShim), it defines window.ethereum and forwards EIP-1193
// requests to anvil, whose dev accounts are unlocked.
//
// Line protocol. stdout (one event a line, nothing else is printed there):
//   BILL <label> <json>          the basket's bill as the page has it:
//                                {items, extras, totalBill, totalBill_base_units, alert}
//   CHALLENGE <label> <type> <value>   the challenge callback was called
//   SENT <label> <tx> <status_url>     the page paid through the shim: the driver checks
//                                the transaction on chain and answers OK
//   ANSWERED <label> <state>     (text challenge) tollgate accepted the transaction hash
//   (the driver waits for status.json to say confirming and answers CONFIRMING)
//   PENDING <label>              checkout's success callback has not been called: the
//                                driver mines a block and answers MINED
//   CHECKOUT_OK <label> <payment_id>   the success callback was called
//   STORED <label> <receipt>     the wallet store holds the receipt under the contract
//                                hash with the products bought
//   REFUND_PROOF                 the refund's addItem carried the stored CD receipt
//   OPENED <path> <status>       the browser opened an album page
//   DONE / FAIL <reason>         as in harness.mjs
// Every wait is bounded; nothing sleeps for a fixed time.

import {
  PAID_MS, STEP_MS, checkNoPageErrors, expectInput, fail, installShim, log, out, run, step, watch,
} from './harness.mjs';

const CD = 'ACD2346233';
const DELUXE = 'DCD2346233';

/**
 * The bill of the page's basket (its global `myBasket`): each line as `[productID,
 * itemPrice, itemCount, itemsPrice]`, every amount a decimal string.
 */
async function bill(page) {
  return page.evaluate(() => {
    const b = window.myBasket;
    const plain = (l) => l.map((i) => [i.productID, i.itemPrice, i.itemCount, i.itemsPrice]);
    for (const i of b.items.concat(b.extras)) {
      for (const k of ['itemPrice', 'itemsPrice']) {
        if (typeof i[k] !== 'string') throw new Error(`${i.productID}.${k} is a ${typeof i[k]}, not a decimal string`);
      }
    }
    if (typeof b.totalBill !== 'string') throw new Error(`totalBill is a ${typeof b.totalBill}`);
    return { items: plain(b.items), extras: plain(b.extras), totalBill: b.totalBill, totalBill_base_units: b.totalBill_base_units };
  });
}

/** Waits for the shim to send one more transaction than `already`; its hash. */
async function nextTx(page, label, already) {
  await step(`${label}: wait for the page to pay through the shim`, STEP_MS, () =>
    page.waitForFunction((n) => window.__shim && window.__shim.sent.length > n, already),
  );
  const sent = await page.evaluate(() => window.__shim.sent.slice());
  if (sent.length !== already + 1) fail(`${label}: the shim sent ${sent.length - already} transactions`);
  return sent[sent.length - 1];
}

/** The driver checks the transaction on chain. */
async function sent(label, tx, statusUrl) {
  out(`SENT ${label} ${tx} ${statusUrl}`);
  await expectInput('OK');
}

/**
 * Once the driver saw the payment confirming: checkout's success callback (`success()`
 * in the page) has not run; the driver mines; now it must run.
 */
async function pendingThenPaid(page, label, success, paymentId) {
  await expectInput('CONFIRMING');
  if (await page.evaluate(success)) fail(`${label}: checkout's success callback ran while the payment was confirming`);
  out(`PENDING ${label}`);
  await expectInput('MINED');
  await step(`${label}: wait for checkout's success callback`, PAID_MS, () => page.waitForFunction(success, null, { polling: 50 }));
  out(`CHECKOUT_OK ${label} ${paymentId}`);
}

/** The wallet store's entries with their keys. */
async function stored(page) {
  return page.evaluate(() =>
    Object.keys(localStorage)
      .filter((k) => k.startsWith('tollgate:wallet:'))
      .map((k) => ({ key: k, entry: JSON.parse(localStorage.getItem(k)) })),
  );
}

function checkEntry(label, e, hash, paymentId, products) {
  if (!e) fail(`${label}: no wallet entry for contract ${hash}`);
  const x = e.entry;
  if (e.key !== `tollgate:wallet:${hash}` || x.hash !== hash) fail(`${label}: stored under ${e.key}`);
  if (!/^tg1\./.test(x.receipt || '') || x.payment_id !== paymentId || !x.claim_token || x.scope == null) {
    fail(`${label}: stored entry lacks receipt/payment_id/claim_token/scope: ${JSON.stringify({ ...x, receipt: !!x.receipt, claim_token: !!x.claim_token })}`);
  }
  if (!(x.exp > Date.now() / 1000 + 86400)) fail(`${label}: stored receipt expires at ${x.exp}`);
  if (JSON.stringify(x.products) !== JSON.stringify(products)) fail(`${label}: stored products ${JSON.stringify(x.products)}, expected ${JSON.stringify(products)}`);
  out(`STORED ${label} ${x.receipt}`);
}

/** Opens `path` in `page`; its status (and the content check on 200). */
async function open(page, cfg, path, want) {
  const resp = await step(`open ${path}`, STEP_MS, () => page.goto(`${cfg.base}${path}`));
  if (resp.status() !== want) fail(`${path}: the browser got ${resp.status()}, expected ${want}`);
  if (want === 200) {
    const content = ((await page.locator('#content').textContent()) ?? '').trim();
    if (content !== `Album page ${path}`) fail(`${path}: the page shows ${JSON.stringify(content)}`);
  }
  out(`OPENED ${path} ${resp.status()}`);
}

/**
 * (1) The customer buys the CD through a basket (a url challenge: the payment page; the
 * page pays the payment's EIP-681 URI through the shim, answering nothing).
 */
async function buyCd(context, cfg) {
  const page = watch(await context.newPage(), 'cd');
  await step('cd: open the shop page', STEP_MS, () => page.goto(`${cfg.base}/shop/buy-cd.html`));
  // The page had a webinos object of its own: extended, not replaced.
  const w = await page.evaluate(() => [window.webinos.keep, window.webinos.payment.other, typeof webinos.payment.createShoppingBasket]);
  if (w[0] !== 1 || w[1] !== 2 || w[2] !== 'function') fail(`cd: window.webinos after the library: ${JSON.stringify(w)}`);
  await step('cd: wait for the challenge', STEP_MS, () => page.waitForFunction(() => window.__shop.challenges.length > 0 || window.__shop.error));
  const shop = await page.evaluate(() => ({ challenges: window.__shop.challenges, error: window.__shop.error, payment: myBasket.payment, type: myBasket.challengeType }));
  if (shop.error) fail(`cd: the basket failed: ${JSON.stringify(shop.error)}`);
  out(`BILL cd ${JSON.stringify({ ...(await bill(page)), alert: null })}`);
  const [[type, value]] = shop.challenges;
  out(`CHALLENGE cd ${type} ${value}`);
  if (type !== 'url' || shop.type !== 'url') fail(`cd: a ${type} challenge (asked for ${shop.type})`);
  const paymentPage = await step('cd: load the challenge URL', STEP_MS, () => context.request.get(value));
  if (paymentPage.status() !== 200 || !/text\/html/.test(paymentPage.headers()['content-type'] || '')) {
    fail(`cd: the payment page answered ${paymentPage.status()} ${paymentPage.headers()['content-type']}`);
  }
  await sent('cd', await nextTx(page, 'cd', 0), shop.payment.status_url);
  await pendingThenPaid(page, 'cd', () => !!window.__shop.success, shop.payment.payment_id);
  const after = await page.evaluate(() => ({ error: window.__shop.error, hash: myBasket.contractHash, receipt: myBasket.receipt }));
  if (after.error) fail(`cd: the error callback ran too: ${JSON.stringify(after.error)}`);
  const entries = await stored(page);
  checkEntry('cd', entries.find((e) => e.entry.hash === after.hash), after.hash, shop.payment.payment_id, [CD]);
  if (after.receipt !== entries.find((e) => e.entry.hash === after.hash).entry.receipt) fail('cd: basket.receipt is not the stored receipt');
  // The receipt cookie (set with the receipt) opens the CD's pages, not the deluxe edition's.
  await open(page, cfg, '/albums/ladytron-cd/index.html', 200);
  await open(page, cfg, '/albums/ladytron-deluxe/index.html', 402);
  checkNoPageErrors('cd');
  await page.close();
}

/**
 * (2) The seed's example program: refund the CD, buy the deluxe edition, text
 * challenge answered with the transaction hash the page paid through the shim.
 */
async function seedExchange(context, cfg) {
  // The refund's proof must come from the wallet store, not the receipt cookie.
  await context.clearCookies();
  const page = watch(await context.newPage(), 'seed');
  const itemBodies = [];
  page.on('request', (r) => {
    const p = new URL(r.url()).pathname;
    if (r.method() === 'POST' && /^\/_tollgate\/basket\/[^/]+\/items$/.test(p)) itemBodies.push(JSON.parse(r.postData() || 'null'));
  });
  const answered = page.waitForResponse(
    (r) => r.request().method() === 'POST' && /^\/_tollgate\/basket\/[^/]+\/challenge$/.test(new URL(r.url()).pathname),
    { timeout: 0 },
  );
  answered.catch(() => {}); // awaited later, under a bounded step
  const alerts = () => page.evaluate(() => window.__alerts.slice());
  await step('seed: open the seed program page', STEP_MS, () => page.goto(`${cfg.base}/shop/seed-basket.html`));
  await step('seed: wait for the bill (updateSuccess)', STEP_MS, () =>
    page.waitForFunction(() => window.__alerts.some((a) => a.startsWith('Total amount is')) || window.__alerts.some((a) => a.startsWith('Failure'))),
  );
  const a1 = await alerts();
  if (a1.some((a) => a.startsWith('Failure'))) fail(`seed: paymentFailure: ${JSON.stringify(await page.evaluate(() => window.__failures))}`);
  out(`BILL seed ${JSON.stringify({ ...(await bill(page)), alert: a1[a1.length - 1] })}`);

  // The refund carried the CD's stored receipt (the page gave none; the cookie is gone).
  const held = (await stored(page)).find((e) => (e.entry.products || []).includes(CD));
  if (!held) fail('seed: the CD receipt is not in the wallet store');
  if (itemBodies.length !== 2) fail(`seed: ${itemBodies.length} addItem calls`);
  const [refund, deluxe] = itemBodies;
  if (refund.productID !== CD || refund.itemPrice !== -14.99 || refund.receipt !== held.entry.receipt) {
    fail(`seed: the refund sent ${JSON.stringify({ ...refund, receipt: refund.receipt && refund.receipt.slice(0, 12) })}`);
  }
  if (deluxe.productID !== DELUXE || deluxe.itemPrice !== 17.98 || 'receipt' in deluxe) fail(`seed: the purchase sent ${JSON.stringify(deluxe)}`);
  out('REFUND_PROOF');

  // The library keeps the challenge it hands the seed's paymentChallenge on the basket.
  await step('seed: wait for the challenge', STEP_MS, () => page.waitForFunction(() => window.myBasket && myBasket.challenge));
  const { type, value } = await page.evaluate(() => myBasket.challenge);
  out(`CHALLENGE seed ${type} ${value}`);
  const payment = await page.evaluate(() => myBasket.payment);
  const tx = await nextTx(page, 'seed', 0);
  await sent('seed', tx, payment.status_url);
  const answer = await step('seed: wait for the answer to the challenge', STEP_MS, () => answered);
  const body = await answer.json().catch(() => null);
  const asked = JSON.parse(answer.request().postData() || 'null');
  if (!asked || asked.response !== tx) fail(`seed: the page answered ${JSON.stringify(asked)}, not the transaction hash ${tx}`);
  if (answer.status() !== 200 || !body || body.accepted !== true) fail(`seed: answerChallenge got ${answer.status()} ${JSON.stringify(body)}`);
  out(`ANSWERED seed ${body.payment && body.payment.state}`);
  const success = () => window.__alerts.includes('Checkout handled successfully - payment was performed.');
  await pendingThenPaid(page, 'seed', success, payment.payment_id);
  const a2 = await alerts();
  if (a2.some((a) => a.startsWith('Failure'))) fail(`seed: paymentFailure after success: ${JSON.stringify(await page.evaluate(() => window.__failures))}`);
  const hash = await page.evaluate(() => myBasket.contractHash);
  const entries = await stored(page);
  checkEntry('seed', entries.find((e) => e.entry.hash === hash), hash, payment.payment_id, [DELUXE]);
  if (entries.some((e) => (e.entry.products || []).includes(CD))) fail('seed: the refunded CD is still listed in the wallet store');
  log(`alerts: ${JSON.stringify(a2)}`);
  // The new receipt's cookie opens the deluxe edition.
  await open(page, cfg, '/albums/ladytron-deluxe/index.html', 200);
  checkNoPageErrors('seed');
  await page.close();
}

run(async (browser) => {
  const cfg = JSON.parse(process.argv[2] || 'null');
  if (!cfg || !cfg.base) fail('usage: node basket.mjs CONFIG_JSON');
  const context = await browser.newContext();
  await context.addInitScript(installShim, { rpc: cfg.rpc, account: cfg.payer, chainId: `0x${cfg.chainId.toString(16)}` });
  await buyCd(context, cfg);
  await expectInput('EXCHANGE');
  await seedExchange(context, cfg);
  await context.close();
});
