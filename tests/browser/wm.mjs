// Web Monetization in Debian's headless Chromium, for tests/wm_browser.rs:
// tollgate.js `monetize()` on tollgate's own 402 paywall, verified by the real
// tollgate against the strict local Open Payments server.
//
//   node tests/browser/wm.mjs '<json>'   {base, wallet, ip1, ip2, ip3, ip4, shots}
//
// No Web Monetization agent (browser extension) can be installed here, so the page
// gets what an agent would give it: a `<link rel="monetization">` naming the
// receiving wallet address (added when the page has none: tollgate's paywall does not
// inject one yet), and SYNTHETIC `monetization` events (`new Event('monetization',
// {bubbles: true})` with `incomingPayment`, `amountSent` and `paymentPointer`
// defined, dispatched on that link), fired after the driver has made the Open
// Payments server's incoming payment receive what the step needs. An init script
// calls `tollgate.monetize()` on tollgate's paywall (the page tollgate serves for the
// priced article, with tollgate.js), records its progress, and counts the page's
// `POST …/wm/verify` calls and how many are in flight at once.
//
// Line protocol. stdout (one event a line):
//   LOCKED <received> <required> <verifies>  /articles/one: two events (the second
//                        while the first verify is in flight) for ip1, which holds
//                        too little: one verify at a time, retried with backoff,
//                        then waiting; the page never reloaded
//   UNLOCKED <scope>     after the driver's FIRE: a third event for ip1 (now enough)
//                        stored the receipt and reloaded: the article, from the origin
//   RESOLVED <scope> <received> <required>   /articles/two#noreload: monetize({reload:
//                        false}) resolved with the receipt (ip2); no reload; the
//                        article then fetches with the cookie
//   REJECTED <code> <status>   /articles/three#noreload: ip3 pays another wallet
//                        address: onerror and a rejection, the page stays locked
//   UNAVAILABLE 503      /articles/four#noreload: the driver broke the server's
//                        signature checks; tollgate answered 503 (Retry-After)
//   RECOVERED <scope> <statuses>  after the driver's MENDED, monetize() retried after
//                        Retry-After and resolved (ip4); the article then fetches
//   SCREENSHOT <path> / DONE / FAIL <reason>
// stdin: `FIRE` once the driver has raised ip1's receivedAmount (and expired the
// server's tokens); `BROKEN` once the server refuses every signature; `MENDED` once
// it checks them normally again.

import {
  PAID_MS, STEP_MS, checkNoPageErrors, expectInput, fail, log, navigationTo, out, run, screenshot, step, text,
  watch,
} from './harness.mjs';

const cfg = JSON.parse(process.argv[2]);
const RETRIES = 2;
const BACKOFF_MS = 150;

/** Runs in every page before its own scripts: wires monetize() on tollgate's paywall. */
function initScript({ wallet, retries, backoffMs }) {
  window.__wm = { progress: [], errors: [], done: null, verifies: 0, statuses: [], inflight: 0, maxInflight: 0, linkAdded: false };
  const wm = window.__wm;
  const origFetch = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : input.url;
    const counted = /\/wm\/verify$/.test(new URL(url, location.href).pathname);
    if (counted) {
      wm.verifies += 1;
      wm.inflight += 1;
      wm.maxInflight = Math.max(wm.maxInflight, wm.inflight);
    }
    try {
      const r = await origFetch(input, init);
      if (counted) wm.statuses.push(r.status);
      return r;
    } finally {
      if (counted) wm.inflight -= 1;
    }
  };
  document.addEventListener('DOMContentLoaded', () => {
    // tollgate's paywall: its pay form, and tollgate.js loaded.
    if (!window.tollgate || !document.getElementById('pay-form')) return;
    let link = document.querySelector('link[rel="monetization"]');
    if (!link) {
      link = document.createElement('link');
      link.rel = 'monetization';
      link.href = wallet;
      document.head.appendChild(link);
      wm.linkAdded = true;
    }
    window.tollgate
      .monetize({
        reload: location.hash !== '#noreload',
        retries,
        backoffMs,
        onprogress: (i) => wm.progress.push(i),
        onerror: (e) => wm.errors.push({ code: e.code, status: e.status, message: e.message }),
      })
      .then(
        (v) => {
          wm.done = { ok: true, value: v };
        },
        (e) => {
          wm.done = { ok: false, code: e.code, status: e.status, message: e.message };
        },
      );
  });
}

/** What a Web Monetization agent does after its outgoing payment was created. */
/** (`times` events in one task: the later ones arrive while the first verify is in flight.) */
function fireMonetization({ incomingPayment, amount, wallet, times }) {
  const link = document.querySelector('link[rel="monetization"]');
  if (!link) throw new Error('no <link rel="monetization"> on the page');
  for (let i = 0; i < times; i += 1) {
    const ev = new Event('monetization', { bubbles: true });
    Object.defineProperties(ev, {
      incomingPayment: { value: incomingPayment, enumerable: true },
      amountSent: { value: { value: amount, currency: 'USD' }, enumerable: true },
      paymentPointer: { value: wallet, enumerable: true },
    });
    link.dispatchEvent(ev);
  }
}

const wmState = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.__wm)));

/** Waits (bounded) until `pred(state)` holds for the page's monetize() state. */
async function until(page, what, pred) {
  return step(what, STEP_MS, async () => {
    for (;;) {
      const s = await wmState(page);
      if (pred(s)) return s;
      await page.waitForTimeout(50);
    }
  });
}

async function openPaywall(page, urlPath) {
  const resp = await step(`open ${urlPath}`, STEP_MS, () => page.goto(`${cfg.base}${urlPath}`));
  if (!resp || resp.status() !== 402) fail(`${urlPath}: expected tollgate's 402 paywall, got ${resp && resp.status()}`);
  const s = await until(page, `init script ran on ${urlPath}`, (x) => !!x);
  if (!(await page.evaluate(() => typeof window.tollgate?.monetize === 'function'))) fail(`${urlPath}: tollgate.monetize is missing`);
  const href = await page.evaluate(() => document.querySelector('link[rel="monetization"]')?.href);
  if (href !== cfg.wallet) fail(`${urlPath}: the monetization link names ${href}, expected ${cfg.wallet}`);
  log(`${urlPath}: paywall, link ${s.linkAdded ? 'added by the test' : 'injected by tollgate'}`);
}

async function expectArticle(page, slug, where) {
  const h1 = await text(page, 'h1#article');
  if (h1 !== `Article ${slug}`) fail(`${where}: the page shows ${JSON.stringify(h1)}, expected the article`);
}

/** The article, fetched by the page with its cookies: 200 from the origin. */
async function fetchArticle(page, slug) {
  const got = await page.evaluate(async (p) => {
    const r = await fetch(p, { credentials: 'same-origin' });
    return { status: r.status, text: await r.text() };
  }, `/articles/${slug}`);
  if (got.status !== 200 || !got.text.includes(`Article ${slug}`)) fail(`/articles/${slug} did not unlock: ${got.status}`);
}

run(async (browser) => {
  const context = await browser.newContext();
  await context.addInitScript(initScript, { wallet: cfg.wallet, retries: RETRIES, backoffMs: BACKOFF_MS });
  const page = watch(await context.newPage(), 'wm');
  let navigations = 0;
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) navigations += 1;
  });

  // ---- /articles/one: too little, then enough -----------------------------------------
  await openPaywall(page, '/articles/one');
  await screenshot(page, cfg.shots, 'wm-paywall.png');
  const before = navigations;
  const fire = (incomingPayment, amount, times = 1) =>
    page.evaluate(fireMonetization, { incomingPayment, amount, wallet: cfg.wallet, times });
  // Two events at once (the agent re-emits its last event): one verify in flight.
  await fire(cfg.ip1, '0.03', 2);
  const locked = await until(page, 'monetize() gives up on too little', (s) =>
    s.progress.some((i) => i.state === 'waiting'),
  );
  if (navigations !== before) fail('the page reloaded although too little was received');
  if (locked.maxInflight !== 1) fail(`${locked.maxInflight} verifies were in flight at once for one incoming payment`);
  // The duplicate event while the first verify ran: asked again at once, then RETRIES.
  if (locked.verifies !== 2 + RETRIES) fail(`${locked.verifies} verifies, expected ${2 + RETRIES}`);
  if (locked.errors.length) fail(`onerror on a 402: ${JSON.stringify(locked.errors)}`);
  const last = locked.progress.filter((i) => i.state === 'insufficient').pop();
  if (typeof last.received !== 'string' || typeof last.required !== 'string') fail(`amounts are not decimal strings: ${JSON.stringify(last)}`);
  if ((await page.title()).indexOf('Payment required') < 0) fail('the paywall is gone');
  out(`LOCKED ${last.received} ${last.required} ${locked.verifies}`);

  await expectInput('FIRE');
  const nav = navigationTo(page, '/articles/one');
  await fire(cfg.ip1, '0.02');
  const resp = await step('reload into the article', PAID_MS, () => nav);
  if (resp.status() !== 200) fail(`after the verify, /articles/one answered ${resp.status()}`);
  await step('article loaded', STEP_MS, () => page.waitForLoadState('load'));
  await expectArticle(page, 'one', 'after the reload');
  const stored = await page.evaluate(() =>
    Object.keys(localStorage)
      .filter((k) => k.startsWith('tollgate:wallet:'))
      .map((k) => ({ key: k, entry: JSON.parse(localStorage.getItem(k)) })),
  );
  const found = stored.find((x) => x.entry.kind === 'wm' && x.entry.resource === '/articles/one');
  const wmEntry = found && found.entry;
  // Keyed like every entry: by the receipt's `h` claim (here tollgate's unlock hash).
  if (!wmEntry || !wmEntry.receipt.startsWith('tg1.') || found.key !== `tollgate:wallet:${wmEntry.hash}`) {
    fail(`no Web Monetization receipt in the wallet store: ${JSON.stringify(stored)}`);
  }
  const claims = JSON.parse(Buffer.from(wmEntry.receipt.split('.')[1], 'base64url').toString());
  if (claims.h !== wmEntry.hash) fail(`stored under ${wmEntry.hash}, the receipt's h is ${claims.h}`);
  if (wmEntry.incoming_payment !== cfg.ip1) fail(`stored for ${wmEntry.incoming_payment}`);
  await screenshot(page, cfg.shots, 'wm-unlocked.png');
  out(`UNLOCKED ${wmEntry.scope}`);

  // ---- /articles/two: monetize({reload: false}) resolves -----------------------------------
  await openPaywall(page, '/articles/two#noreload');
  const beforeTwo = navigations;
  await fire(cfg.ip2, '0.07');
  const two = await until(page, 'monetize() resolves', (s) => s.done !== null);
  if (!two.done.ok) fail(`monetize({reload: false}) rejected: ${JSON.stringify(two.done)}`);
  if (navigations !== beforeTwo) fail('monetize({reload: false}) reloaded the page');
  const v = two.done.value;
  if (!v.receipt.startsWith('tg1.')) fail(`resolved without a receipt: ${JSON.stringify(v)}`);
  await fetchArticle(page, 'two');
  out(`RESOLVED ${v.scope} ${v.received} ${v.required}`);

  // ---- /articles/three: an incoming payment of another wallet address -------------------
  await openPaywall(page, '/articles/three#noreload');
  await fire(cfg.ip3, '1.00');
  const three = await until(page, 'monetize() rejects', (s) => s.done !== null);
  if (three.done.ok) fail(`monetize() unlocked with another wallet's payment: ${JSON.stringify(three.done)}`);
  if (three.errors.length !== 1 || three.errors[0].code !== three.done.code) fail(`onerror: ${JSON.stringify(three.errors)}`);
  if ((await page.title()).indexOf('Payment required') < 0) fail('the paywall is gone');
  out(`REJECTED ${three.done.code} ${three.done.status}`);

  // ---- /articles/four: the Open Payments server refuses tollgate's signatures -------------
  // tollgate answers 503 with Retry-After; monetize() asks again after it, and once
  // the driver has mended the server (MENDED), the retry unlocks.
  await openPaywall(page, '/articles/four#noreload');
  await expectInput('BROKEN');
  await fire(cfg.ip4, '0.05');
  const down = await until(page, 'a 503 from tollgate', (s) => s.statuses.includes(503));
  if (down.done !== null) fail(`monetize() settled on a 503: ${JSON.stringify(down.done)}`);
  out('UNAVAILABLE 503');
  await expectInput('MENDED');
  const four = await until(page, 'monetize() resolves after Retry-After', (s) => s.done !== null);
  if (!four.done.ok) fail(`monetize() did not recover from the 503: ${JSON.stringify(four.done)}`);
  if (four.errors.length) fail(`onerror while retrying a 503: ${JSON.stringify(four.errors)}`);
  await fetchArticle(page, 'four');
  out(`RECOVERED ${four.done.value.scope} ${four.statuses.join(',')}`);

  checkNoPageErrors('in the Web Monetization flow');
  await context.close();
});
