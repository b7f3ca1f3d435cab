// What the browser scripts (paywall.mjs, wallet.mjs) share: the line protocol with
// the Rust driver (events on stdout, answers on stdin), bounded steps, page
// watching, and launching Debian's Chromium with playwright-core. Every wait is
// bounded; nothing sleeps for a fixed time.

import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

export const STEP_MS = 20_000; // one page load, click or check
export const PAID_MS = 30_000; // from the driver's answer until the page shows the content
export const STDIN_MS = 120_000; // the driver paying, checking and mining

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A step that failed: its message becomes the `FAIL` line. */
export class Fail extends Error {}

export const out = (line) => process.stdout.write(`${line}\n`);
export const log = (line) => process.stderr.write(`${line}\n`);
export const fail = (reason) => {
  throw new Fail(reason);
};
export const firstLine = (e) => String((e && e.message) || e).split('\n')[0];

/** Runs `fn` and fails with `what` if it throws or takes longer than `ms`. */
export async function step(what, ms, fn) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Fail(`${what}: timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([fn(), timeout]);
  } catch (e) {
    if (e instanceof Fail) throw e;
    log(`error in "${what}": ${e && e.stack ? e.stack : e}`);
    throw new Fail(`${what}: ${firstLine(e)}`);
  } finally {
    clearTimeout(timer);
  }
}

// ---- stdin: lines from the driver ----------------------------------------------

const input = readline.createInterface({ input: process.stdin });
const queued = [];
const waiting = [];
let stdinClosed = false;
input.on('line', (l) => {
  const w = waiting.shift();
  if (w) w(l);
  else queued.push(l);
});
input.on('close', () => {
  stdinClosed = true;
  while (waiting.length) waiting.shift()(null);
});

function nextLine() {
  if (queued.length) return Promise.resolve(queued.shift());
  if (stdinClosed) return Promise.resolve(null);
  return new Promise((resolve) => waiting.push(resolve));
}

/** Waits (bounded) for the driver to answer `word`. */
export async function expectInput(word) {
  const line = await step(`waiting for ${word} on stdin`, STDIN_MS, nextLine);
  if (line === null) fail(`stdin closed while waiting for ${word}`);
  if (line.trim() !== word) fail(`expected ${word} on stdin, got ${JSON.stringify(line)}`);
}

// ---- pages ---------------------------------------------------------------------

const pageErrors = [];

/**
 * Logs a page's traffic and console to stderr; records uncaught exceptions and counts
 * its claims (`page.claims`: POSTs to `/_tollgate/pay`).
 */
export function watch(page, label) {
  page.claims = 0;
  page.on('console', (m) => log(`[${label} console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => {
    pageErrors.push(`${label}: ${firstLine(e)}`);
    log(`[${label} pageerror] ${e && e.stack ? e.stack : e}`);
  });
  page.on('requestfailed', (r) => log(`[${label} requestfailed] ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/_tollgate/pay') page.claims += 1;
  });
  page.on('response', (r) => log(`[${label} http] ${r.status()} ${r.request().method()} ${r.url()}`));
  page.setDefaultTimeout(STEP_MS);
  page.setDefaultNavigationTimeout(STEP_MS);
  return page;
}

export function checkNoPageErrors(where) {
  if (pageErrors.length) fail(`uncaught JavaScript error(s) ${where}: ${pageErrors.join(' | ')}`);
}

/** A promise for the next main-frame navigation response of `page` to `pathname`. */
export function navigationTo(page, pathname) {
  const p = page.waitForResponse(
    (r) =>
      r.request().isNavigationRequest() &&
      r.request().frame() === page.mainFrame() &&
      new URL(r.url()).pathname === pathname,
    { timeout: 0 },
  );
  p.catch(() => {}); // awaited later, under a bounded step
  return p;
}

export async function text(page, selector) {
  return ((await page.locator(selector).first().textContent()) ?? '').trim();
}

export async function screenshot(page, dir, name) {
  const file = path.join(dir, name);
  await step(`screenshot ${name}`, STEP_MS, () => page.screenshot({ path: file, fullPage: true }));
  out(`SCREENSHOT ${file}`);
}

/** Launches Debian's Chromium (or `TOLLGATE_CHROMIUM`) headless with playwright-core. */
export function launchChromium() {
  const executablePath = process.env.TOLLGATE_CHROMIUM || '/usr/bin/chromium';
  // playwright-core runs the browser on a fresh temporary profile and removes it on close.
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
}

/**
 * Launches a browser (`launch`: Chromium unless told otherwise), runs
 * `scenarios(browser)`, closes it, prints `DONE` and exits 0; any failure prints
 * `FAIL <reason>` and exits 1.
 */
export function run(scenarios, launch = launchChromium) {
  const main = async () => {
    const browser = await step('launch the browser', 60_000, launch);
    log(`browser ${await browser.version()}`);
    try {
      await scenarios(browser);
    } finally {
      await step('close the browser', 15_000, () => browser.close()).catch((e) => log(e.message));
    }
    out('DONE');
  };
  main().then(
    () => process.exit(0),
    (e) => {
      if (!(e instanceof Fail)) log(e && e.stack ? e.stack : String(e));
      out(`FAIL ${firstLine(e)}`);
      process.exit(1);
    },
  );
}

/**
 * Runs in the page before any of its scripts (addInitScript). NOT a wallet
 * extension: it forwards EIP-1193 requests to anvil, whose dev accounts are unlocked.
 * `cfg`: `{rpc, account, chainId (0x hex), refuseSwitch?, rejectSend?}`; records every
 * request in `window.__shim.calls` and every sent transaction hash in `__shim.sent`.
 * Self-contained: playwright serialises it into the page.
 */
export function installShim(cfg) {
  const calls = [];
  const sent = [];
  let chainId = cfg.chainId;
  let nextId = 1;
  const rejected = (message) => Object.assign(new Error(message), { code: 4001 });
  async function rpc(method, params) {
    const r = await fetch(cfg.rpc, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params: params || [] }),
    });
    const j = await r.json();
    if (j.error) throw Object.assign(new Error(j.error.message), { code: j.error.code, data: j.error.data });
    return j.result;
  }
  window.ethereum = {
    isTollgateTestShim: true,
    async request({ method, params }) {
      calls.push({ method, params: params === undefined ? null : params });
      switch (method) {
        case 'eth_requestAccounts':
        case 'eth_accounts':
          return [cfg.account];
        case 'eth_chainId':
          return chainId;
        case 'wallet_switchEthereumChain':
          if (cfg.refuseSwitch) throw rejected('User rejected the request.');
          chainId = params[0].chainId;
          return null;
        case 'eth_sendTransaction': {
          if (cfg.rejectSend) throw rejected('User denied transaction signature.');
          const hash = await rpc(method, params);
          sent.push(hash);
          return hash;
        }
        default:
          return rpc(method, params);
      }
    },
    on() {},
    removeListener() {},
  };
  window.__shim = { calls, sent };
}
