/*
 * tollgate.js — tollgate's browser wallet library (SPEC section 9).
 *
 * One dependency-free script, no build step. Include it from tollgate itself:
 *
 *   <script src="/_tollgate/tollgate.js"></script>
 *
 * It finds tollgate's endpoints from its own address (whatever the pay_prefix) and
 * defines `window.tollgate` and, keeping the names of Taler's taler-wallet-lib,
 * `taler.offerContractFrom` and `taler.executePayment` on `window.taler` (added to an
 * existing `window.taler`, never replacing it).
 *
 *   taler.offerContractFrom(contractUrl[, announcedHash])
 *       Fetch the terms, recompute their hash (SHA-256 of RFC 8785 JCS) and refuse
 *       them if it differs from the announced one; show them; on Confirm claim, pay
 *       (EIP-1193 wallet, else manual instructions), poll, get the receipt, store it,
 *       open the fulfillment URL.
 *   taler.executePayment(contractHash, payUrl, offerUrl)
 *       A contract this browser accepted: replay its receipt or resume its payment.
 *       Any other: go to offerUrl (a shared fulfillment URL).
 *   tollgate.fetch(input, init)
 *       fetch() that meets a 402 with the same flow (no navigation) and retries with
 *       `Authorization: Tollgate <receipt>`; stored receipts are sent up front.
 *   webinos.payment.createShoppingBasket(success, error, serviceProviderID, customerID, shopID)
 *       The webinos Payment API's shopping basket over tollgate's basket endpoints
 *       (added to an existing `window.webinos`): addItem, update, checkout (with the
 *       challenge callback; success only once paid and the receipt stored),
 *       answerChallenge, release. Also `tollgate.createShoppingBasket`, and
 *       `tollgate.resumeShoppingBasket(success, error)` for the basket this browser
 *       still has open (after a reload).
 *   tollgate.payEip681(uri)
 *       Pays an EIP-681 token transfer through the browser wallet (e.g. inside a
 *       basket's challenge callback); resolves with the transaction hash.
 *   tollgate.monetize(opts)
 *       Web Monetization (SPEC section 10): hears the page's `monetization` events
 *       and has tollgate verify each one's incoming payment
 *       (`POST {pay_prefix}/wm/verify`); once enough was received, stores the
 *       receipt and reloads the page (or resolves, with `reload: false`).
 *
 * Money is integer base units end to end: BigInt or decimal strings, never Number.
 * Nothing is claimed or paid before the user presses Confirm.
 */
(function () {
  'use strict';

  var VERSION = '1';

  // ---- where tollgate is ------------------------------------------------------

  // `{public_url}{pay_prefix}`, from this script's own URL.
  var BASE = (function findBase() {
    var src = document.currentScript && document.currentScript.src;
    if (!src) {
      var all = document.querySelectorAll('script[src]');
      for (var i = all.length - 1; i >= 0 && !src; i--) {
        if (/\/tollgate\.js(?:[?#]|$)/.test(all[i].src)) src = all[i].src;
      }
    }
    var u = new URL(src || '/_tollgate/tollgate.js', location.href);
    return u.origin + u.pathname.replace(/\/tollgate\.js$/, '');
  })();

  var config = {
    /** Milliseconds between status polls. */
    pollMs: 1000,
  };

  // ---- errors -------------------------------------------------------------------

  /**
   * Every failure the library reports: `code` is stable (for programs), `message`
   * is for people (it is also shown in the dialog).
   */
  class TollgateError extends Error {
    constructor(code, message, extra) {
      super(message);
      this.name = 'TollgateError';
      this.code = code;
      if (extra) Object.assign(this, extra);
    }
  }

  // ---- amounts: BigInt only ---------------------------------------------------

  var DECIMAL = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/;

  /** "0.5" with 8 decimals → 50000000n. Throws on anything but a plain decimal. */
  function toBaseUnits(decimal, decimals) {
    var m = typeof decimal === 'string' ? DECIMAL.exec(decimal) : null;
    if (!m) throw new TollgateError('bad_terms', 'not a decimal amount: ' + String(decimal));
    var frac = m[2] || '';
    if (frac.length > decimals) {
      throw new TollgateError('bad_terms', 'amount ' + decimal + ' has more than ' + decimals + ' decimals');
    }
    return BigInt(m[1]) * 10n ** BigInt(decimals) + BigInt(frac.padEnd(decimals, '0') || '0');
  }

  /** 50000000n with 8 decimals → "0.5". */
  function fromBaseUnits(units, decimals) {
    var s = BigInt(units).toString().padStart(decimals + 1, '0');
    var whole = s.slice(0, s.length - decimals);
    var frac = s.slice(s.length - decimals).replace(/0+$/, '');
    return frac ? whole + '.' + frac : whole;
  }

  // ---- the contract hash: SHA-256 of RFC 8785 (JCS), lowercase hex -------------

  function wellFormed(s) {
    if (typeof s.isWellFormed === 'function') return s.isWellFormed();
    return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
  }

  /**
   * The RFC 8785 canonical form of a parsed JSON value, for the types contract
   * terms use: objects (keys sorted by UTF-16 code units, which is what
   * Array.prototype.sort compares), arrays, strings and integers (serialised as
   * JSON.stringify does, which is what JCS prescribes), booleans and null. A number
   * that is not a safe integer cannot be checked exactly after JSON.parse: refused.
   */
  function jcs(value) {
    if (value === null) return 'null';
    switch (typeof value) {
      case 'boolean':
        return value ? 'true' : 'false';
      case 'string':
        if (!wellFormed(value)) throw new TollgateError('bad_terms', 'the terms contain a malformed string');
        return JSON.stringify(value);
      case 'number':
        if (!Number.isSafeInteger(value)) {
          throw new TollgateError('bad_terms', 'the terms contain a number this wallet cannot check exactly: ' + value);
        }
        return JSON.stringify(value);
      case 'object': {
        if (Array.isArray(value)) return '[' + value.map(jcs).join(',') + ']';
        var keys = Object.keys(value).sort();
        return (
          '{' +
          keys
            .map(function (k) {
              return jcs(k) + ':' + jcs(value[k]);
            })
            .join(',') +
          '}'
        );
      }
      default:
        throw new TollgateError('bad_terms', 'the terms contain a value JSON cannot hold');
    }
  }

  async function sha256Hex(text) {
    if (!(window.crypto && crypto.subtle)) {
      throw new TollgateError(
        'insecure_context',
        'This page is not a secure context (https), so the browser cannot check the contract. Nothing was paid.'
      );
    }
    var digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
    return Array.from(new Uint8Array(digest), function (b) {
      return b.toString(16).padStart(2, '0');
    }).join('');
  }

  /** The contract hash of parsed terms. */
  function contractHash(terms) {
    return sha256Hex(jcs(terms));
  }

  // ---- small checks ---------------------------------------------------------------

  var ADDRESS = /^0x[0-9a-fA-F]{40}$/;
  var HASH = /^[0-9a-f]{64}$/;

  function nowSecs() {
    return Math.floor(Date.now() / 1000);
  }

  /** An absolute http(s) URL, or a TollgateError (never navigate to `javascript:`). */
  function httpUrl(s, what) {
    var u;
    try {
      u = new URL(s, location.href);
    } catch (e) {
      u = null;
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
      throw new TollgateError('bad_terms', what + ' is not an http(s) URL: ' + String(s));
    }
    return u.href;
  }

  function isInt(v) {
    return Number.isSafeInteger(v) && v >= 0;
  }

  function isStr(v) {
    return typeof v === 'string';
  }

  /** Checks the shape of contract terms (after the hash matched). */
  function checkTerms(t) {
    var bad = function (why) {
      return new TollgateError('bad_terms', 'The contract is malformed (' + why + '); it was refused. Nothing was paid.');
    };
    if (!t || typeof t !== 'object' || Array.isArray(t)) throw bad('not an object');
    if (t.version !== 1) throw bad('unknown version ' + t.version);
    ['merchant', 'summary', 'amount', 'currency', 'token', 'resource', 'scope', 'fulfillment_url'].forEach(function (k) {
      if (!isStr(t[k])) throw bad(k + ' is missing');
    });
    ['chain_id', 'decimals', 'created', 'pay_deadline', 'access_ttl'].forEach(function (k) {
      if (!isInt(t[k])) throw bad(k + ' is not a whole number');
    });
    if (t.decimals > 77) throw bad('decimals');
    if (!ADDRESS.test(t.token)) throw bad('token is not an address');
    if (!Array.isArray(t.products)) throw bad('products is not a list');
    t.products.forEach(function (p) {
      if (!p || !isStr(p.description) || !isInt(p.quantity) || !isStr(p.price)) throw bad('a product line');
      toBaseUnits(p.price, t.decimals);
    });
    if (toBaseUnits(t.amount, t.decimals) <= 0n) throw bad('amount is zero');
    httpUrl(t.fulfillment_url, 'the fulfillment URL');
  }

  // ---- the wallet store: localStorage, one entry per contract hash -------------------

  var PREFIX = 'tollgate:wallet:';
  var memory = new Map(); // when localStorage is unavailable (then nothing survives a reload)

  function storage() {
    try {
      var s = window.localStorage;
      s.length; // throws when storage is blocked
      return s;
    } catch (e) {
      return null;
    }
  }

  function readRaw(key) {
    var s = storage();
    return s ? s.getItem(key) : memory.has(key) ? memory.get(key) : null;
  }

  function writeRaw(key, value) {
    var s = storage();
    if (s) {
      try {
        s.setItem(key, value);
        return;
      } catch (e) {
        // quota: keep it for this page at least
      }
    }
    memory.set(key, value);
  }

  function removeRaw(key) {
    var s = storage();
    if (s) s.removeItem(key);
    memory.delete(key);
  }

  function allKeys() {
    var s = storage();
    var keys = s ? Array.from({ length: s.length }, function (_, i) { return s.key(i); }) : [];
    memory.forEach(function (_, k) {
      if (keys.indexOf(k) < 0) keys.push(k);
    });
    return keys.filter(function (k) {
      return k && k.indexOf(PREFIX) === 0;
    });
  }

  function parseEntry(raw) {
    try {
      var e = JSON.parse(raw);
      return e && typeof e === 'object' && HASH.test(e.hash) && isInt(e.exp) ? e : null;
    } catch (err) {
      return null;
    }
  }

  /**
   * An entry is `{hash, scope, payment_id, claim_token, receipt, exp, state, …}` plus
   * what a resumed payment needs (contract_url, contract_token, pay_url, status_url,
   * receipt_url, qr_url, fulfillment_url, offer_url, resource, merchant, address,
   * amount, amount_base_units, token, chain_id, eip681, expires_at, tx_hash).
   * `exp` is the receipt's expiry once paid; before, how long the payment can still
   * complete. Expired entries are dropped.
   */
  var wallet = {
    get: function (hash) {
      var key = PREFIX + String(hash || '').toLowerCase();
      var e = parseEntry(readRaw(key));
      if (e && e.exp > nowSecs()) return e;
      if (readRaw(key) !== null) removeRaw(key);
      return null;
    },
    put: function (entry) {
      entry.updated = nowSecs();
      writeRaw(PREFIX + entry.hash, JSON.stringify(entry));
      return entry;
    },
    remove: function (hash) {
      removeRaw(PREFIX + String(hash || '').toLowerCase());
    },
    /** Every live entry (expired and malformed ones are dropped on the way). */
    list: function () {
      return allKeys()
        .map(function (k) {
          return wallet.get(k.slice(PREFIX.length));
        })
        .filter(Boolean);
    },
  };

  /** The live entry for `resource` at `merchant` that holds a receipt, else one in progress. */
  function entryForResource(merchant, resource, skip) {
    var mine = wallet.list().filter(function (e) {
      return e.merchant === merchant && e.resource === resource && !(e.receipt && skip && skip.has(e.receipt));
    });
    return (
      mine.find(function (e) { return e.receipt; }) ||
      mine.find(function (e) { return e.payment_id; }) ||
      null
    );
  }

  // ---- scopes: does a stored receipt cover a path? -------------------------------------

  function patternCovers(pattern, path) {
    if (pattern.slice(-2) === '/*') {
      var prefix = pattern.slice(0, -2);
      return path === prefix || path.indexOf(prefix + '/') === 0;
    }
    if (pattern.indexOf('{') >= 0) {
      var want = pattern.replace(/\/$/, '').split('/');
      var got = path.replace(/\/$/, '').split('/');
      return (
        want.length === got.length &&
        want.every(function (w, i) {
          return /^\{[^}]*\}$/.test(w) ? got[i] !== '' : w === got[i];
        })
      );
    }
    return path === pattern || path === pattern + '/';
  }

  /**
   * Whether a receipt scope covers `path`: a plain scope is that one path, literally;
   * `route:PATTERN` a route's paths (the gate has the last word: a more specific
   * route may still price a path this says is covered; then the 402 comes back).
   */
  function scopeCovers(scope, path) {
    if (Array.isArray(scope)) return scope.some(function (s) { return scopeCovers(s, path); });
    if (!isStr(scope)) return false;
    if (scope.indexOf('route:') === 0) return patternCovers(scope.slice(6), path);
    var decoded = path;
    try {
      decoded = decodeURI(path);
    } catch (e) {
      // keep the raw path
    }
    return scope === path || scope === decoded;
  }

  function receiptFor(origin, path, skip) {
    var t = nowSecs();
    return (
      wallet.list().find(function (e) {
        return (
          e.receipt &&
          e.exp > t &&
          (!skip || !skip.has(e.receipt)) &&
          originOf(e.fulfillment_url) === origin &&
          scopeCovers(e.scope, path)
        );
      }) || null
    );
  }

  function originOf(url) {
    try {
      return new URL(url).origin;
    } catch (e) {
      return null;
    }
  }

  // ---- the dialog ---------------------------------------------------------------------

  var STYLE =
    '#tollgate-dialog{font:15px/1.45 system-ui,sans-serif;color:#1d1d1f;background:#fff;border:1px solid #c8c8cf;' +
    'border-radius:12px;padding:1.25rem 1.5rem;max-width:32rem;width:calc(100% - 2rem);box-shadow:0 8px 30px rgba(0,0,0,.25)}' +
    '#tollgate-dialog::backdrop{background:rgba(0,0,0,.45)}' +
    '#tollgate-dialog h2{margin:0 0 .75rem;font-size:1.25rem}' +
    '#tollgate-dialog table{border-collapse:collapse;width:100%;margin:.5rem 0}' +
    '#tollgate-dialog th,#tollgate-dialog td{text-align:left;padding:.2rem .4rem;border-bottom:1px solid #e4e4e8;vertical-align:top}' +
    '#tollgate-dialog td.num,#tollgate-dialog th.num{text-align:right;white-space:nowrap}' +
    '#tollgate-dialog dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem .8rem;margin:.5rem 0}' +
    '#tollgate-dialog dt{font-weight:600}#tollgate-dialog dd{margin:0;overflow-wrap:anywhere}' +
    '#tollgate-dialog code{font-family:ui-monospace,monospace;font-size:.85rem;word-break:break-all}' +
    '#tollgate-dialog .tollgate-total{font-size:1.4rem;font-weight:600}' +
    '#tollgate-dialog .tollgate-actions{display:flex;gap:.6rem;justify-content:flex-end;margin-top:1rem;flex-wrap:wrap}' +
    '#tollgate-dialog button{font:inherit;border-radius:8px;padding:.5rem 1.1rem;cursor:pointer;border:1px solid #b0b0b8;background:#fff;color:#1d1d1f}' +
    '#tollgate-dialog button.tollgate-primary{background:#f7931a;border-color:#f7931a;color:#fff;font-weight:600}' +
    '#tollgate-dialog button:focus-visible{outline:3px solid #1a5fb4;outline-offset:2px}' +
    '#tollgate-dialog [role=alert]{color:#a51d2d;font-weight:600}' +
    '#tollgate-dialog .tollgate-muted{color:#5e5c64;font-size:.85rem}' +
    '#tollgate-dialog img{display:block;margin:.5rem auto;background:#fff}' +
    '#tollgate-dialog p{overflow-wrap:anywhere}' +
    '#tollgate-dialog [hidden]{display:none!important}';

  function el(tag, attrs, children) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') n.textContent = attrs[k];
      else if (k === 'hidden') n.hidden = !!attrs[k];
      else n.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      n.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return n;
  }

  function bodyReady() {
    if (document.body) return Promise.resolve();
    return new Promise(function (resolve) {
      document.addEventListener('DOMContentLoaded', function () { resolve(); }, { once: true });
    });
  }

  /**
   * The one in-page dialog: the contract with Confirm / Cancel, then the payment's
   * progress. Stable ids for pages and tests: #tollgate-dialog (data-phase: contract,
   * claiming, wallet, manual, polling, paid, error; data-state: the payment state),
   * #tollgate-title, #tollgate-contract, #tollgate-summary, #tollgate-products,
   * #tollgate-amount, #tollgate-merchant, #tollgate-deadline, #tollgate-hash,
   * #tollgate-manual (#tollgate-address, #tollgate-manual-amount, #tollgate-eip681,
   * #tollgate-qr), #tollgate-status (role=status), #tollgate-error (role=alert),
   * buttons #tollgate-confirm, #tollgate-cancel, #tollgate-wallet, #tollgate-close.
   */
  class Dialog {
    constructor() {
      if (!document.getElementById('tollgate-style')) {
        document.head.appendChild(el('style', { id: 'tollgate-style', text: STYLE }));
      }
      var $ = {};
      var add = function (name, node) {
        $[name] = node;
        return node;
      };
      var d = el('dialog', {
        id: 'tollgate-dialog',
        role: 'dialog',
        'aria-modal': 'true',
        'aria-labelledby': 'tollgate-title',
        'aria-describedby': 'tollgate-status',
      }, [
        add('title', el('h2', { id: 'tollgate-title', tabindex: '-1', text: 'Confirm your purchase' })),
        add('contract', el('section', { id: 'tollgate-contract', 'aria-label': 'Contract' }, [
          add('summary', el('p', { id: 'tollgate-summary' })),
          add('terms', el('div', { id: 'tollgate-terms' }, [
            el('table', { id: 'tollgate-products' }, [
              el('caption', { class: 'tollgate-muted', text: 'What you buy' }),
              el('thead', {}, [
                el('tr', {}, [
                  el('th', { scope: 'col', text: 'Item' }),
                  el('th', { scope: 'col', class: 'num', text: 'Quantity' }),
                  el('th', { scope: 'col', class: 'num', text: 'Price' }),
                ]),
              ]),
              add('lines', el('tbody')),
            ]),
            el('dl', {}, [
              el('dt', { text: 'Total' }),
              el('dd', {}, [add('amount', el('span', { id: 'tollgate-amount', class: 'tollgate-total' }))]),
              el('dt', { text: 'Merchant' }),
              add('merchant', el('dd', { id: 'tollgate-merchant' })),
              el('dt', { text: 'Pay before' }),
              el('dd', {}, [add('deadline', el('time', { id: 'tollgate-deadline' }))]),
              el('dt', { text: 'Network' }),
              add('network', el('dd', { id: 'tollgate-network' })),
              el('dt', { text: 'Contract' }),
              add('hash', el('dd', { id: 'tollgate-hash', class: 'tollgate-muted' })),
            ]),
          ])),
        ])),
        add('manual', el('section', { id: 'tollgate-manual', 'aria-label': 'Payment instructions', hidden: true }, [
          el('p', {}, [
            'Send exactly ',
            add('manualAmount', el('strong', { id: 'tollgate-manual-amount' })),
            ' 0xBTC (the ERC-20 token ',
            add('manualToken', el('code', { id: 'tollgate-manual-token' })),
            ' on chain ',
            add('manualChain', el('span', { id: 'tollgate-manual-chain' })),
            ') to',
          ]),
          el('p', {}, [add('address', el('code', { id: 'tollgate-address' }))]),
          add('qr', el('img', { id: 'tollgate-qr', alt: 'EIP-681 payment QR code', width: '200', height: '200' })),
          el('p', {}, [add('eip681', el('a', { id: 'tollgate-eip681', href: '#', text: 'Open in a wallet app' }))]),
        ])),
        add('status', el('p', { id: 'tollgate-status', role: 'status', 'aria-live': 'polite' })),
        add('error', el('p', { id: 'tollgate-error', role: 'alert', hidden: true })),
        el('div', { class: 'tollgate-actions' }, [
          add('cancel', el('button', { id: 'tollgate-cancel', type: 'button', text: 'Cancel' })),
          add('wallet', el('button', { id: 'tollgate-wallet', type: 'button', class: 'tollgate-primary', hidden: true, text: 'Pay with browser wallet' })),
          add('close', el('button', { id: 'tollgate-close', type: 'button', hidden: true, text: 'Close' })),
          add('confirm', el('button', { id: 'tollgate-confirm', type: 'button', class: 'tollgate-primary', text: 'Confirm' })),
        ]),
      ]);
      this.el = d;
      this.$ = $;
      this.closed = false;
      this._onDismiss = null;
      this._dismissed = new Set();
      var self = this;
      // Escape: the browser's `cancel`. We decide what it means (Cancel before the
      // confirmation, Close after); if the browser closes the dialog anyway, `close`
      // is handled the same way.
      d.addEventListener('cancel', function (ev) {
        ev.preventDefault();
        self.dismiss();
      });
      d.addEventListener('close', function () {
        self.dismiss();
      });
      $.cancel.addEventListener('click', function () { self.dismiss(); });
      $.close.addEventListener('click', function () { self.dismiss(); });
    }

    /** Opens the dialog (modal) and moves focus into it. */
    async open() {
      await bodyReady();
      if (!this.el.isConnected) document.body.appendChild(this.el);
      if (!this.el.open) this.el.showModal();
    }

    phase(name) {
      this.el.setAttribute('data-phase', name);
    }

    status(text) {
      this.$.status.textContent = text;
    }

    /** Shows an error in words; the dialog stays open with a Close button. */
    fail(err) {
      var $ = this.$;
      this.phase('error');
      $.error.textContent = err && err.message ? err.message : String(err);
      $.error.hidden = false;
      this.status('');
      $.confirm.hidden = true;
      $.cancel.hidden = true;
      $.wallet.hidden = true;
      $.close.hidden = false;
      $.close.focus();
    }

    /** Resolves to true on Confirm, false on Cancel / Escape. */
    confirm() {
      var self = this;
      var $ = this.$;
      return new Promise(function (resolve) {
        var onConfirm = function () {
          $.confirm.removeEventListener('click', onConfirm);
          self._onDismiss = null;
          resolve(true);
        };
        $.confirm.addEventListener('click', onConfirm);
        self._onDismiss = function () {
          $.confirm.removeEventListener('click', onConfirm);
          resolve(false);
        };
      });
    }

    /** Cancel, Close, Escape: whatever is waiting hears it once. */
    dismiss() {
      if (this.closed) return;
      var f = this._onDismiss;
      this._onDismiss = null;
      this.close();
      if (f) f();
      this._dismissed.forEach(function (g) { g(); });
      this._dismissed.clear();
    }

    /** Calls `f` when the user closes the dialog; returns the way to stop listening. */
    onDismiss(f) {
      var set = this._dismissed;
      set.add(f);
      return function () { set.delete(f); };
    }

    close() {
      this.closed = true;
      if (this.el.open) this.el.close();
      if (this.el.isConnected) this.el.remove();
      if (current === this) current = null;
    }

    /** The contract view, focus on Cancel (the safe choice) or on the title. */
    async showContract(terms, hash) {
      var $ = this.$;
      this.phase('contract');
      $.title.textContent = 'Confirm your purchase';
      $.summary.textContent = terms.summary;
      $.lines.textContent = '';
      terms.products.forEach(function (p) {
        $.lines.appendChild(el('tr', {}, [
          el('td', { text: p.description }),
          el('td', { class: 'num', text: String(p.quantity) }),
          el('td', { class: 'num', text: p.price + ' 0xBTC' }),
        ]));
      });
      $.amount.textContent = terms.amount + ' 0xBTC';
      $.merchant.textContent = terms.merchant;
      var deadline = new Date(terms.pay_deadline * 1000);
      $.deadline.dateTime = deadline.toISOString();
      $.deadline.textContent = deadline.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
      $.network.textContent = 'chain ' + terms.chain_id + ', token ' + terms.token;
      $.hash.textContent = 'SHA-256 ' + hash + ' (checked in this browser)';
      $.contract.hidden = false;
      this.status('Nothing is paid until you confirm.');
      await this.open();
      $.cancel.focus();
    }

    /**
     * A view without the contract's details: errors before it could be shown (no
     * summary), resumed payments (their summary).
     */
    async showBare(title, summary) {
      this.$.title.textContent = title;
      this.$.summary.textContent = summary || '';
      this.$.terms.hidden = true;
      this.$.contract.hidden = !summary;
      this.$.confirm.hidden = true;
      this.$.cancel.hidden = true;
      this.$.close.hidden = false;
      await this.open();
      this.$.title.focus();
    }

    /** After Confirm: only Close remains (closing stops watching, not the payment). */
    progress(text) {
      var $ = this.$;
      if (this.el.getAttribute('data-phase') === 'contract') $.title.textContent = 'Payment';
      $.terms.hidden = true;
      $.confirm.hidden = true;
      $.cancel.hidden = true;
      $.close.hidden = false;
      this.phase('claiming');
      this.status(text);
    }

    /** Address, amount, EIP-681 link and QR code for paying by hand. */
    showManual(entry) {
      var $ = this.$;
      $.manualAmount.textContent = entry.amount;
      $.manualToken.textContent = entry.token;
      $.manualChain.textContent = String(entry.chain_id);
      $.address.textContent = entry.address;
      $.eip681.href = entry.eip681;
      $.qr.src = entry.qr_url;
      $.manual.hidden = false;
    }

    /** Shows the payment's state from status.json. */
    showState(s) {
      this.el.setAttribute('data-state', s.state);
      var confs = s.required_confirmations
        ? ' (' + s.confirmations + '/' + s.required_confirmations + ' confirmations)'
        : '';
      var words = {
        new: 'Waiting for the payment…',
        seen: 'Payment seen on chain (received ' + s.received + ' of ' + s.amount + ' 0xBTC)…',
        confirming: 'Payment seen, confirming' + confs + '…',
        paid: 'Paid' + confs + '.',
        paid_late: 'Paid (late)' + confs + '.',
      };
      this.status(words[s.state] || 'Payment ' + s.state + '.');
    }
  }

  var current = null; // the dialog of the flow in progress

  function takeDialog() {
    if (current && !current.closed) {
      throw new TollgateError('busy', 'Another tollgate payment is already open on this page.');
    }
    current = new Dialog();
    return current;
  }

  // ---- talking to tollgate ----------------------------------------------------------

  async function readJson(r) {
    try {
      return await r.json();
    } catch (e) {
      return {};
    }
  }

  async function postJson(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
  }

  /**
   * GET the terms at `contractUrl`, recompute their hash and compare it with the one
   * the contract URL announces (`X-Taler-Contract-Hash`) and, when given, the one
   * the caller was announced (the 402's). Refused terms are never shown. `check`
   * checks their shape (default: an offer's, `checkTerms`).
   */
  async function loadContract(contractUrl, announced, check) {
    var url = new URL(contractUrl, location.href);
    var r;
    try {
      r = await fetch(url.href, { headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
    } catch (e) {
      throw new TollgateError('contract_unavailable', 'Could not download the contract (' + e.message + '). Nothing was paid.');
    }
    if (!r.ok) {
      var j = await readJson(r);
      throw new TollgateError(
        'contract_unavailable',
        'The contract could not be loaded (HTTP ' + r.status + (j.message ? ': ' + j.message : '') + '). Nothing was paid.'
      );
    }
    var header = (r.headers.get('X-Taler-Contract-Hash') || '').trim().toLowerCase();
    var text = await r.text();
    var terms;
    try {
      terms = JSON.parse(text);
    } catch (e) {
      throw new TollgateError('bad_terms', 'The contract is not JSON; it was refused. Nothing was paid.');
    }
    var computed = await contractHash(terms);
    var expected = announced ? String(announced).trim().toLowerCase() : '';
    if (!header && !expected) {
      throw new TollgateError('hash_missing', 'No contract hash was announced, so the contract cannot be checked; it was refused. Nothing was paid.');
    }
    if (header && header !== computed) {
      throw new TollgateError(
        'hash_mismatch',
        'The contract was refused: its terms do not match the hash announced with them (announced ' +
          header + ', the terms hash to ' + computed + '). Nothing was paid.',
        { announced: header, computed: computed }
      );
    }
    if (expected && expected !== computed) {
      throw new TollgateError(
        'hash_mismatch',
        'The contract was refused: it is not the contract this offer announced (announced ' +
          expected + ', the terms hash to ' + computed + '). Nothing was paid.',
        { announced: expected, computed: computed }
      );
    }
    (check || checkTerms)(terms);
    var token = decodeURIComponent(url.pathname.split('/').pop() || '');
    if (!token) throw new TollgateError('bad_terms', 'The contract URL names no contract token.');
    return { terms: terms, hash: computed, token: token, contractUrl: url.href };
  }

  /** A new wallet entry for an accepted contract (before it is claimed). */
  function acceptedEntry(offer, payUrl, offerUrl) {
    var t = offer.terms;
    return {
      hash: offer.hash,
      state: 'accepted',
      scope: t.scope,
      resource: t.resource,
      merchant: t.merchant,
      summary: t.summary,
      contract_url: offer.contractUrl,
      contract_token: offer.token,
      pay_url: payUrl || BASE + '/pay',
      offer_url: offerUrl || null,
      fulfillment_url: t.fulfillment_url,
      amount: t.amount,
      decimals: t.decimals,
      access_ttl: t.access_ttl,
      payment_id: null,
      claim_token: null,
      receipt: null,
      exp: t.pay_deadline + 1,
    };
  }

  /** `POST /pay`: the payment instructions, checked against the accepted terms. */
  async function claim(entry, ui) {
    ui.progress('Getting a payment address…');
    var body = { contract: entry.contract_token };
    if (entry.claim_token) body.claim_token = entry.claim_token;
    var r;
    try {
      r = await postJson(entry.pay_url, body);
    } catch (e) {
      throw new TollgateError('claim_failed', 'Could not reach tollgate to claim the contract (' + e.message + '). Nothing was paid.');
    }
    var j = await readJson(r);
    if (r.status === 409 && j.code === 'contract_already_claimed') {
      wallet.remove(entry.hash);
      throw new TollgateError(
        'already_claimed',
        'Someone else already claimed this offer (a shared link?). Buy your own on the offer page. Nothing was paid.',
        { offer_url: j.offer_url ? httpUrl(j.offer_url, 'the offer URL') : entry.offer_url }
      );
    }
    if (r.status === 410) {
      wallet.remove(entry.hash);
      throw new TollgateError('expired', 'This offer expired before it was claimed. Nothing was paid; load the page again for a fresh offer.');
    }
    if (r.status === 429) {
      throw new TollgateError('rate_limited', 'Too many new payments from this address; try again in a minute. Nothing was paid.');
    }
    if (r.status !== 200 && r.status !== 201) {
      throw new TollgateError('claim_failed', 'tollgate refused the claim (HTTP ' + r.status + (j.message ? ': ' + j.message : '') + '). Nothing was paid.');
    }
    var units;
    try {
      units = BigInt(j.amount_base_units);
    } catch (e) {
      units = -1n;
    }
    var due = toBaseUnits(entry.amount, entry.decimals);
    if (
      units !== due ||
      !ADDRESS.test(j.address || '') ||
      !ADDRESS.test(j.token || '') ||
      !isInt(j.chain_id) ||
      !isInt(j.expires_at) ||
      typeof j.claim_token !== 'string' ||
      !/^[0-9a-f]{16}$/.test(j.payment_id || '')
    ) {
      throw new TollgateError('mismatch', 'tollgate\'s payment instructions do not match the contract you confirmed; nothing was sent.');
    }
    Object.assign(entry, {
      state: 'claimed',
      payment_id: j.payment_id,
      claim_token: j.claim_token,
      address: j.address,
      amount: fromBaseUnits(units, entry.decimals),
      amount_base_units: units.toString(),
      token: j.token,
      chain_id: j.chain_id,
      eip681: String(j.eip681 || ''),
      status_url: httpUrl(j.status_url, 'the status URL'),
      receipt_url: httpUrl(j.receipt_url, 'the receipt URL'),
      qr_url: httpUrl(j.status_url, 'the status URL').replace(/status\.json$/, 'qr.svg'),
      expires_at: j.expires_at,
      // A late payment still unlocks: keep the entry as long as tollgate keeps the claim.
      exp: j.expires_at + (entry.access_ttl || 0),
    });
    return wallet.put(entry);
  }

  /** Checks `entry`'s terms against the caller's: a claim must pay what was confirmed. */
  function checkClaimAgainstTerms(entry, terms) {
    if (
      entry.chain_id !== terms.chain_id ||
      entry.token.toLowerCase() !== terms.token.toLowerCase() ||
      BigInt(entry.amount_base_units) !== toBaseUnits(terms.amount, terms.decimals)
    ) {
      throw new TollgateError('mismatch', 'tollgate\'s payment instructions do not match the contract you confirmed; nothing was sent.');
    }
  }

  // ---- paying with an EIP-1193 provider -----------------------------------------------

  function providerCode(e) {
    if (!e) return undefined;
    if (e.code !== undefined) return e.code;
    if (e.cause && e.cause.code !== undefined) return e.cause.code;
    if (e.data && e.data.originalError) return e.data.originalError.code;
    return undefined;
  }

  function providerMessage(e) {
    return (e && (e.message || (e.data && e.data.message))) || String(e);
  }

  /** An error from the wallet, in words. */
  function walletError(e, when) {
    var code = providerCode(e);
    var msg = providerMessage(e);
    if (code === 4001) {
      return new TollgateError('rejected', when === 'send'
        ? 'You rejected the payment in your wallet. Nothing was sent.'
        : 'You declined the wallet\'s request. Nothing was sent.');
    }
    if (when === 'send' && /insufficient|exceeds balance|transfer amount exceeds|balance too low/i.test(msg)) {
      return new TollgateError('insufficient_balance', 'Your wallet could not send the payment: insufficient token balance (' + msg + '). Nothing was sent.');
    }
    if (code === 4100) return new TollgateError('unauthorized', 'Your wallet did not allow this site to use your account. Nothing was sent.');
    return new TollgateError(when === 'send' ? 'send_failed' : 'wallet_failed', 'Your wallet reported an error: ' + msg + '. Nothing was sent.');
  }

  function word(hex20) {
    return hex20.toLowerCase().replace(/^0x/, '').padStart(64, '0');
  }

  /**
   * eth_requestAccounts; the chain checked (wallet_switchEthereumChain when it
   * differs); the token balance checked; then exactly one eth_sendTransaction of
   * transfer(address, amount) to the token.
   */
  async function payWithProvider(eth, entry, ui) {
    // An entry without a contract hash (tollgate.payEip681) is not a wallet entry.
    var save = function () {
      if (entry.hash) wallet.put(entry);
    };
    ui.phase('wallet');
    ui.status('Connecting to your wallet…');
    var accounts;
    try {
      accounts = await eth.request({ method: 'eth_requestAccounts' });
    } catch (e) {
      throw walletError(e, 'connect');
    }
    var from = accounts && accounts[0];
    if (!ADDRESS.test(from || '')) throw new TollgateError('no_account', 'Your wallet gave no account to pay from. Nothing was sent.');

    var chainOf = async function () {
      try {
        return BigInt(await eth.request({ method: 'eth_chainId' }));
      } catch (e) {
        throw walletError(e, 'connect');
      }
    };
    var want = BigInt(entry.chain_id);
    var have = await chainOf();
    if (have !== want) {
      ui.status('Your wallet is on chain ' + have + '; asking it to switch to chain ' + want + '…');
      try {
        await eth.request({ method: 'wallet_switchEthereumChain', params: [{ chainId: '0x' + want.toString(16) }] });
      } catch (e) {
        var code = providerCode(e);
        var why = code === 4001
          ? 'You refused to switch your wallet from chain ' + have + ' to chain ' + want + ', the chain this payment is on.'
          : code === 4902
            ? 'Your wallet does not know chain ' + want + ' (it is on chain ' + have + '); add that network to it and try again.'
            : 'Your wallet could not switch from chain ' + have + ' to chain ' + want + ' (' + providerMessage(e) + ').';
        throw new TollgateError('wrong_chain', why + ' Nothing was sent.', { chain_id: entry.chain_id, wallet_chain_id: have.toString() });
      }
      have = await chainOf();
      if (have !== want) {
        throw new TollgateError('wrong_chain', 'Your wallet is still on chain ' + have + ', not chain ' + want + '. Nothing was sent.');
      }
    }

    var amount = BigInt(entry.amount_base_units);
    var balance = null;
    try {
      var out = await eth.request({
        method: 'eth_call',
        params: [{ from: from, to: entry.token, data: '0x70a08231' + word(from) }, 'latest'],
      });
      if (typeof out === 'string' && /^0x[0-9a-fA-F]+$/.test(out)) balance = BigInt(out);
    } catch (e) {
      balance = null; // unknown: the wallet will say so when sending
    }
    if (balance !== null && balance < amount) {
      throw new TollgateError(
        'insufficient_balance',
        'Your account ' + from + ' holds ' + fromBaseUnits(balance, entry.decimals) + ' 0xBTC; this costs ' +
          entry.amount + ' 0xBTC. Nothing was sent.',
        { balance_base_units: balance.toString() }
      );
    }

    var data = '0xa9059cbb' + word(entry.address) + amount.toString(16).padStart(64, '0');
    entry.state = 'sending';
    entry.from = from;
    save();
    ui.status('Confirm the payment of ' + entry.amount + ' 0xBTC in your wallet…');
    var tx;
    try {
      tx = await eth.request({ method: 'eth_sendTransaction', params: [{ from: from, to: entry.token, data: data }] });
    } catch (e) {
      entry.state = 'claimed';
      save();
      throw walletError(e, 'send');
    }
    entry.state = 'sent';
    entry.tx_hash = String(tx);
    save();
    ui.status('Payment sent (transaction ' + entry.tx_hash + '). Waiting for the network…');
    return entry.tx_hash;
  }

  // ---- watching the payment ------------------------------------------------------------

  /** Waits `ms` (the poll interval), or less when the user closes the dialog. */
  function pause(ms, ui) {
    return new Promise(function (resolve) {
      var stop = ui.onDismiss(function () {
        clearTimeout(t);
        resolve();
      });
      var t = setTimeout(function () {
        stop();
        resolve();
      }, ms);
    });
  }

  function closedError() {
    return new TollgateError('closed', 'You closed the payment window. The payment is kept: come back to this page to resume it.');
  }

  /** One status.json, or null when tollgate cannot be reached. */
  async function statusOnce(entry) {
    try {
      var r = await fetch(entry.status_url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
      return r.ok ? await r.json() : null;
    } catch (e) {
      return null;
    }
  }

  /** Polls status.json until paid; expired and underpaid end the payment. */
  async function watch(entry, ui) {
    var failures = 0;
    for (;;) {
      if (ui.closed) throw closedError();
      var s = null;
      try {
        var r = await fetch(entry.status_url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
        if (r.status === 404) {
          wallet.remove(entry.hash);
          throw new TollgateError('unknown_payment', 'tollgate does not know this payment any more.');
        }
        if (r.ok) s = await r.json();
      } catch (e) {
        if (e instanceof TollgateError) throw e;
      }
      if (ui.closed) throw closedError();
      if (s && typeof s.state === 'string') {
        failures = 0;
        ui.showState(s);
        if (s.state === 'paid' || s.state === 'paid_late') return s;
        if (s.state === 'expired') {
          wallet.remove(entry.hash);
          throw new TollgateError('expired', 'The payment expired before anything arrived. Nothing was paid; load the page again for a fresh offer.');
        }
        if (s.state === 'underpaid') {
          wallet.remove(entry.hash);
          throw new TollgateError(
            'underpaid',
            'The payment expired with only ' + s.received + ' of ' + s.amount + ' 0xBTC received. Keep payment id ' +
              entry.payment_id + ' and contact the merchant.'
          );
        }
        if (s.state === 'refunded') {
          wallet.remove(entry.hash);
          throw new TollgateError('refunded', 'This payment was refunded.');
        }
        if ((s.state === 'seen' || s.state === 'confirming') && entry.state !== s.state) {
          entry.state = s.state; // money is on its way: never offer to send again
          wallet.put(entry);
        }
      } else {
        failures += 1;
        ui.status('Cannot reach tollgate; retrying…');
      }
      await pause(config.pollMs * Math.min(1 + failures, 5), ui);
    }
  }

  /**
   * `POST /{id}/receipt {claim_token}`: the receipt (and the cookie). `null` while
   * tollgate says it is not paid yet.
   */
  async function fetchReceipt(entry) {
    var r;
    try {
      r = await postJson(entry.receipt_url, { claim_token: entry.claim_token });
    } catch (e) {
      throw new TollgateError('receipt_failed', 'Could not reach tollgate for the receipt (' + e.message + ').');
    }
    var j = await readJson(r);
    if (r.status === 409) return null;
    if (r.status === 403) {
      wallet.remove(entry.hash);
      throw new TollgateError('receipt_refused', 'tollgate refused this wallet\'s claim token for payment ' + entry.payment_id + '.');
    }
    if (!r.ok || typeof j.receipt !== 'string' || j.receipt.indexOf('tg1.') !== 0) {
      throw new TollgateError('receipt_failed', 'tollgate gave no receipt (HTTP ' + r.status + (j.message ? ': ' + j.message : '') + ').');
    }
    Object.assign(entry, {
      state: 'paid',
      receipt: j.receipt,
      scope: j.scope !== undefined ? j.scope : entry.scope,
      exp: isInt(j.expires_at) ? j.expires_at : entry.exp,
    });
    return wallet.put(entry);
  }

  /** Watches until paid, then fetches the receipt (retrying while tollgate says 409). */
  async function settle(entry, ui) {
    for (;;) {
      await watch(entry, ui);
      var done = await fetchReceipt(entry);
      if (done) return done;
      await pause(config.pollMs, ui);
    }
  }

  function provider() {
    var eth = window.ethereum;
    return eth && typeof eth.request === 'function' ? eth : null;
  }

  /**
   * From an entry that is accepted (or claimed) to a receipt: claim if needed, pay
   * (automatically only right after the user's confirmation), watch, receipt.
   */
  async function carryOn(entry, ui, terms, autoPay) {
    if (!entry.payment_id) entry = await claim(entry, ui);
    if (terms) checkClaimAgainstTerms(entry, terms);
    var eth = provider();
    var nothingSent = !entry.tx_hash && entry.state === 'claimed';
    if (eth && autoPay && nothingSent) {
      // A repeated claim answers for a payment that may have been paid meanwhile
      // (by hand, from another device): send only while tollgate has seen nothing.
      var before = await statusOnce(entry);
      if (before && before.state !== 'new') nothingSent = false;
    }
    if (eth && autoPay && nothingSent) {
      await payWithProvider(eth, entry, ui);
      ui.phase('polling');
    } else {
      // Manual instructions; with a wallet and nothing sent yet, its button too
      // (a resumed payment is never sent without the user's click).
      ui.phase('manual');
      ui.showManual(entry);
      if (entry.state === 'sending') {
        ui.status('Your wallet may have sent this payment already: check it before paying again.');
      } else if (entry.tx_hash) {
        ui.status('Payment sent (transaction ' + entry.tx_hash + '). Waiting for the network…');
      } else {
        ui.status('Waiting for the payment…');
      }
      if (eth && nothingSent) {
        var btn = ui.$.wallet;
        btn.hidden = false;
        btn.onclick = function () {
          btn.hidden = true;
          payWithProvider(eth, entry, ui).catch(function (e) {
            ui.fail(e);
          });
        };
      }
    }
    var done = await settle(entry, ui);
    ui.$.wallet.hidden = true;
    ui.phase('paid');
    return done;
  }

  function result(entry) {
    return {
      receipt: entry.receipt,
      payment_id: entry.payment_id,
      contract_hash: entry.hash,
      scope: entry.scope,
      expires_at: entry.exp,
      fulfillment_url: entry.fulfillment_url,
    };
  }

  function go(url) {
    location.assign(httpUrl(url, 'the URL'));
  }

  // A replay that reloaded the page and came back within this time means the
  // receipt did not unlock it: stop instead of reloading in a loop.
  var REPLAY_GUARD_MS = 15000;

  /** A stored receipt: (re)obtain the cookie with the claim token, then open the page. */
  async function replay(entry, navigate) {
    var fresh = await fetchReceipt(entry);
    if (!fresh) return null; // no longer paid (a reorg took it back): resume watching
    if (navigate) {
      var key = 'tollgate:replayed:' + entry.hash;
      var last = 0;
      try {
        last = Number(sessionStorage.getItem(key)) || 0;
        sessionStorage.setItem(key, String(Date.now()));
      } catch (e) {
        last = 0;
      }
      if (Date.now() - last < REPLAY_GUARD_MS) {
        throw new TollgateError(
          'replay_failed',
          'Your receipt for this purchase is valid, but the page did not unlock with it; is this browser blocking tollgate\'s cookie?'
        );
      }
      go(fresh.fulfillment_url);
    }
    return result(fresh);
  }

  async function withDialog(ui, f) {
    try {
      return await f();
    } catch (e) {
      if (e && e.code === 'closed') throw e;
      if (!ui.closed) ui.fail(e);
      throw e;
    }
  }

  /** Shows `e` in a dialog of its own (when no other dialog is open), then throws it. */
  async function report(title, e) {
    if (!current || current.closed) {
      var ui = takeDialog();
      await ui.showBare(title);
      ui.fail(e);
    }
    throw e;
  }

  /**
   * Resumes a stored entry: a receipt is replayed (no dialog); a payment in
   * progress is watched again; an accepted, unclaimed contract is claimed at
   * `payUrl` and paid (the user confirmed it already).
   */
  async function resume(entry, navigate, payUrl) {
    if (entry.receipt) {
      var replayed;
      try {
        replayed = await replay(entry, navigate);
      } catch (e) {
        return report('Could not open your purchase', e);
      }
      if (replayed) return replayed;
      entry.receipt = null; // tollgate says not paid (any more, e.g. a reorg): watch it again
    }
    var ui = takeDialog();
    return withDialog(ui, async function () {
      await ui.showBare(entry.payment_id ? 'Payment in progress' : 'Completing your purchase', entry.summary);
      if (payUrl && !entry.payment_id) entry.pay_url = payUrl;
      var done = await carryOn(entry, ui, null, !entry.payment_id);
      if (navigate) {
        ui.status('Paid. Opening ' + done.fulfillment_url + '…');
        go(done.fulfillment_url);
      } else {
        ui.close();
      }
      return result(done);
    });
  }

  /**
   * The whole purchase of verified `offer`: a stored receipt or payment in progress
   * for it (or for the same resource) is used first; otherwise the contract is shown
   * and nothing happens before Confirm.
   */
  async function purchase(offer, opts) {
    var known = wallet.get(offer.hash) || entryForResource(offer.terms.merchant, offer.terms.resource, opts.tried);
    if (known && known.receipt && opts.tried && opts.tried.has(known.receipt)) known = null;
    if (known) return resume(known, opts.navigate, opts.payUrl);
    var ui = takeDialog();
    return withDialog(ui, async function () {
      await ui.showContract(offer.terms, offer.hash);
      if (!(await ui.confirm())) {
        throw new TollgateError('cancelled', 'You cancelled: nothing was claimed or paid.');
      }
      var entry = wallet.put(acceptedEntry(offer, opts.payUrl, opts.offerUrl));
      var done;
      try {
        done = await carryOn(entry, ui, offer.terms, true);
      } catch (e) {
        if (e.code === 'already_claimed' && opts.navigate && e.offer_url) {
          ui.fail(e);
          go(e.offer_url);
        }
        throw e;
      }
      if (opts.navigate) {
        ui.status('Paid. Opening ' + done.fulfillment_url + '…');
        go(done.fulfillment_url);
      } else {
        ui.close();
      }
      return result(done);
    });
  }

  // ---- the public API -----------------------------------------------------------------

  /**
   * Taler's offerContractFrom: download, check, show, and on Confirm buy the
   * contract at `contractUrl`, then open its fulfillment URL. `announcedHash` is the
   * hash the caller was given with the URL (e.g. the 402's X-Taler-Contract-Hash).
   * Resolves with `{receipt, payment_id, contract_hash, scope, expires_at,
   * fulfillment_url}`; rejects with a TollgateError (also shown in the dialog).
   */
  async function offerContractFrom(contractUrl, announcedHash) {
    var offer;
    try {
      offer = await loadContract(contractUrl, announcedHash);
    } catch (e) {
      // Refused before anything of the contract is shown: only the reason.
      return report('Contract refused', e);
    }
    return purchase(offer, { navigate: true, payUrl: BASE + '/pay' });
  }

  /**
   * Taler's executePayment: the contract `contractHash` accepted before is replayed
   * (stored receipt: the cookie is obtained again and the fulfillment URL reloaded;
   * payment in progress: watched again); an unknown one sends the browser to
   * `offerUrl` (a shared fulfillment URL).
   */
  async function executePayment(contractHash, payUrl, offerUrl) {
    var entry = wallet.get(contractHash);
    if (!entry) {
      if (!offerUrl) throw new TollgateError('no_offer', 'This browser never accepted that contract, and no offer URL was given.');
      go(offerUrl);
      return { action: 'offer', offer_url: offerUrl };
    }
    return resume(entry, true, payUrl);
  }

  /**
   * fetch() for priced resources: a stored, unexpired receipt whose scope covers
   * the request is sent up front (`Authorization: Tollgate …`); a 402 carrying
   * X-Taler-Contract-Url/-Hash is paid (with the user's confirmation, no navigation)
   * and the request retried with the new receipt. Rejects with a TollgateError when
   * the purchase does not complete (cancelled included).
   */
  async function tollgateFetch(input, init) {
    var original = new Request(input, init);
    var url = new URL(original.url);
    var tried = new Set();
    var send = function (receipt) {
      var req = original.clone();
      if (!receipt) return fetch(req);
      var headers = new Headers(req.headers);
      headers.set('Authorization', 'Tollgate ' + receipt);
      tried.add(receipt);
      return fetch(new Request(req, { headers: headers }));
    };
    var upFront = original.headers.has('Authorization') ? null : receiptFor(url.origin, url.pathname);
    var resp = await send(upFront && upFront.receipt);
    if (resp.status !== 402) return resp;
    var contractUrl = resp.headers.get('X-Taler-Contract-Url');
    var hash = (resp.headers.get('X-Taler-Contract-Hash') || '').toLowerCase();
    if (!contractUrl || !HASH.test(hash)) return resp;

    var known = wallet.get(hash);
    if (known && known.receipt && !tried.has(known.receipt)) {
      var again = await send(known.receipt);
      if (again.status !== 402) return again;
    }
    var offer = await loadContract(contractUrl, hash);
    // A receipt of ours for this very resource (tollgate's canonical path)?
    var covering = receiptFor(url.origin, offer.terms.resource, tried);
    if (covering) {
      var retried = await send(covering.receipt);
      if (retried.status !== 402) return retried;
    }
    var done = await purchase(offer, {
      navigate: false,
      tried: tried,
      payUrl: resp.headers.get('X-Taler-Pay-Url') || BASE + '/pay',
      offerUrl: resp.headers.get('X-Taler-Offer-Url'),
    });
    return send(done.receipt);
  }

  /** Resumes the stored payment in progress for `contractHash` (no navigation). */
  function resumePayment(contractHash) {
    var entry = wallet.get(contractHash);
    if (!entry) return Promise.reject(new TollgateError('unknown_contract', 'This browser holds no payment for that contract.'));
    return resume(entry, false, null);
  }

  // ---- paying an EIP-681 URI from page code ---------------------------------------------

  /**
   * A non-negative integer as EIP-681 writes one (`2014000000`, also `2.014e9`), as a
   * BigInt; null for anything else (a fraction included).
   */
  function uint256Of(s) {
    var m = /^([0-9]+)(?:\.([0-9]+))?(?:[eE]\+?([0-9]+))?$/.exec(s || '');
    if (!m) return null;
    var frac = (m[2] || '').replace(/0+$/, '');
    var exp = Number(m[3] || '0');
    if (exp > 78 || frac.length > exp) return null;
    return BigInt(m[1] + frac) * 10n ** BigInt(exp - frac.length);
  }

  var EIP681 = /^ethereum:(?:pay-)?(0x[0-9a-fA-F]{40})@([0-9]+)\/transfer\?([^#\s]*)$/;

  /**
   * An EIP-681 ERC-20 transfer, as tollgate writes them
   * (`ethereum:<token>@<chain id>/transfer?address=<to>&uint256=<base units>`):
   * `{token, chain_id, address, amount_base_units}` (the amount a decimal string of
   * base units). Throws a TollgateError (`bad_uri`) for anything else.
   */
  function parseEip681(uri) {
    var bad = function (why) {
      return new TollgateError('bad_uri', 'Not an EIP-681 token transfer this wallet can pay (' + why + '): ' + String(uri));
    };
    var m = typeof uri === 'string' ? EIP681.exec(uri.trim()) : null;
    if (!m) throw bad('expected ethereum:<token>@<chain id>/transfer?address=…&uint256=…');
    var chain = Number(m[2]);
    if (!isInt(chain) || chain === 0) throw bad('chain id');
    var q = new URLSearchParams(m[3]);
    var to = q.get('address') || '';
    if (!ADDRESS.test(to)) throw bad('recipient address');
    var units = uint256Of(q.get('uint256'));
    if (units === null || units <= 0n || units >= 2n ** 256n) throw bad('amount');
    return { token: m[1], chain_id: chain, address: to, amount_base_units: units.toString() };
  }

  /**
   * A stand-in for the dialog where the page owns the UI (baskets, payEip681): no
   * element; `onState` hears every status.json, `onText` the progress in words.
   * `dismiss()` stops whatever waits on it (as closing the dialog does).
   */
  function quietUi(onState, onText) {
    var waiting = new Set();
    return {
      closed: false,
      $: {},
      phase: function () {},
      status: function (text) {
        if (text && onText) callBack(onText, [text]);
      },
      showState: function (s) {
        if (onState) callBack(onState, [s]);
      },
      onDismiss: function (f) {
        waiting.add(f);
        return function () { waiting.delete(f); };
      },
      dismiss: function () {
        if (this.closed) return;
        this.closed = true;
        waiting.forEach(function (g) { g(); });
        waiting.clear();
      },
    };
  }

  /** Calls a page's callback; what it throws stays the page's own error (reported, not ours). */
  function callBack(f, args) {
    if (typeof f !== 'function') return;
    try {
      f.apply(null, args || []);
    } catch (e) {
      setTimeout(function () { throw e; });
    }
  }

  // How long payEip681 waits for its transaction to be mined (a payment's own expiry).
  var MINED_WITHIN_MS = 30 * 60 * 1000;

  /**
   * Waits (polling the wallet's eth_getTransactionReceipt) until `tx` is mined; a
   * reverted transaction is an error.
   */
  async function mined(eth, tx, say) {
    var deadline = Date.now() + MINED_WITHIN_MS;
    say('Transaction ' + tx + ' sent; waiting for it to be mined…');
    for (;;) {
      var r = null;
      try {
        r = await eth.request({ method: 'eth_getTransactionReceipt', params: [tx] });
      } catch (e) {
        r = null; // a flaky node: ask again
      }
      if (r && r.blockNumber) {
        if (r.status !== undefined && r.status !== null && BigInt(r.status) === 0n) {
          throw new TollgateError('send_failed', 'Transaction ' + tx + ' failed on chain (reverted): nothing was paid.');
        }
        return r;
      }
      if (Date.now() > deadline) {
        throw new TollgateError('not_mined', 'Transaction ' + tx + ' was not mined within 30 minutes.');
      }
      await new Promise(function (resolve) { setTimeout(resolve, config.pollMs); });
    }
  }

  /**
   * Pays the EIP-681 transfer `uri` (e.g. from a basket's text challenge) through the
   * browser's EIP-1193 wallet, as the dialog does: eth_requestAccounts, the chain
   * checked (and switched), the token balance checked, one eth_sendTransaction of
   * transfer(address, amount); then waits until the transaction is mined (tollgate
   * checks a challenge's answer on chain; `{mined: false}` skips the wait). Resolves
   * with the transaction hash; rejects with a TollgateError (`bad_uri`, `no_wallet`,
   * `rejected`, `wrong_chain`, `insufficient_balance`, `send_failed`, …). `opts`:
   * `{decimals (default 8), mined (default true), onStatus(text)}`.
   */
  async function payEip681(uri, opts) {
    opts = opts || {};
    var t = parseEip681(uri);
    var eth = provider();
    if (!eth) throw new TollgateError('no_wallet', 'This browser has no wallet (window.ethereum) to pay with. Nothing was sent.');
    var decimals = isInt(opts.decimals) ? opts.decimals : 8;
    var entry = Object.assign(t, {
      state: 'claimed',
      decimals: decimals,
      amount: fromBaseUnits(BigInt(t.amount_base_units), decimals),
    });
    var tx = await payWithProvider(eth, entry, quietUi(null, opts.onStatus));
    if (!/^0x[0-9a-fA-F]{64}$/.test(tx)) {
      throw new TollgateError('send_failed', 'The wallet answered no transaction hash (' + tx + ').');
    }
    if (opts.mined !== false) {
      await mined(eth, tx, function (text) { if (opts.onStatus) callBack(opts.onStatus, [text]); });
    }
    return tx;
  }

  // ---- the shopping basket: webinos.payment (SPEC sections 8 and 9) ---------------------

  /** The seed's PaymentError: `{code, message}` (plain data, as its dictionary). */
  function paymentError(code, message, extra) {
    return Object.assign({ code: code, message: message }, extra || {});
  }

  // Library failures while watching a checkout's payment that mean "the charge failed".
  var CHARGE_FAILED = { expired: 1, underpaid: 1, refunded: 1, unknown_payment: 1 };

  /** Any failure as a PaymentError. */
  function asPaymentError(e) {
    if (e instanceof TollgateError) {
      return paymentError(CHARGE_FAILED[e.code] ? 'payment_charge_failed' : e.code, e.message, { reason: e.code });
    }
    if (e && typeof e === 'object' && isStr(e.code) && isStr(e.message)) return e;
    return paymentError('internal_error', String((e && e.message) || e));
  }

  /**
   * One call to `{pay_prefix}/basket{path}` with the basket's secret; the JSON answer,
   * or a PaymentError: tollgate's own `{code, message}` (with `status`), or
   * `network_error`.
   */
  async function basketCall(method, path, secret, body) {
    var headers = { Accept: 'application/json' };
    if (secret) headers.Authorization = 'Basket ' + secret;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    var r;
    try {
      r = await fetch(BASE + '/basket' + path, {
        method: method,
        credentials: 'same-origin',
        cache: 'no-store',
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw paymentError('network_error', 'Could not reach tollgate (' + e.message + ').');
    }
    var j = await readJson(r);
    if (!r.ok) {
      throw paymentError(
        isStr(j.code) ? j.code : 'http_' + r.status,
        isStr(j.message) ? j.message : 'tollgate answered HTTP ' + r.status + '.',
        { status: r.status }
      );
    }
    return j;
  }

  function malformed(what) {
    return paymentError('bad_answer', 'tollgate\'s answer to ' + what + ' is malformed; nothing was paid.');
  }

  /** Whether an itemPrice (a JSON number or a decimal string) is a refund; no arithmetic. */
  function isRefund(price) {
    return typeof price === 'number' ? price < 0 : /^\s*-/.test(String(price));
  }

  /** What addItem sends: the ShoppingItem's own fields (amounts exactly as the page wrote them). */
  function itemBody(item) {
    if (!item || typeof item !== 'object') throw paymentError('bad_request', 'addItem needs a ShoppingItem.');
    var body = {};
    ['productID', 'description', 'currency', 'itemPrice', 'itemCount', 'itemsPrice', 'receipt'].forEach(function (k) {
      if (item[k] !== undefined && item[k] !== null) body[k] = item[k];
    });
    if (body.itemCount === undefined) body.itemCount = 1;
    return body;
  }

  /**
   * The newest stored receipt of a basket purchase (at this tollgate) whose `products`
   * hold `productID`: what proves a refunded product is held.
   */
  function heldReceipt(productID) {
    var t = nowSecs();
    var held = wallet.list().filter(function (e) {
      return (
        e.receipt && e.exp > t && Array.isArray(e.products) && e.products.indexOf(productID) >= 0 &&
        (!e.base || e.base === BASE)
      );
    });
    held.sort(function (a, b) { return (b.updated || 0) - (a.updated || 0); });
    return held[0] || null;
  }

  /** The shape of a basket's contract terms (lines may be negative: refunds, rebates). */
  function checkBasketTerms(t) {
    var bad = function (why) {
      return new TollgateError('bad_terms', 'The basket\'s contract is malformed (' + why + '); it was refused. Nothing was paid.');
    };
    if (!t || typeof t !== 'object' || Array.isArray(t)) throw bad('not an object');
    if (t.version !== 1) throw bad('unknown version ' + t.version);
    if (!isStr(t.amount) || !isInt(t.decimals) || t.decimals > 77) throw bad('amount');
    if (!isInt(t.chain_id) || !ADDRESS.test(t.token || '')) throw bad('chain or token');
    if (!Array.isArray(t.products)) throw bad('products is not a list');
    toBaseUnits(t.amount, t.decimals);
  }

  /**
   * Checks a checkout answer against the bill the page saw and the contract it names
   * (its terms must hash to `contract_hash`), and stores the payment in the wallet:
   * the entry that becomes the receipt's.
   */
  async function checkedOut(basket, a, billUnits) {
    var p = a && a.payment;
    if (
      !p || typeof p !== 'object' || !isStr(p.payment_id) || !/^[0-9A-Za-z_-]{1,64}$/.test(p.payment_id) ||
      !isStr(p.claim_token) || !isStr(a.contract_hash) || !HASH.test(a.contract_hash.toLowerCase()) ||
      !isStr(a.contract_url) || !isStr(p.amount_base_units) || !/^[0-9]+$/.test(p.amount_base_units)
    ) {
      throw malformed('the checkout');
    }
    var units = BigInt(p.amount_base_units);
    if (billUnits !== null && units !== billUnits) {
      throw paymentError(
        'bill_mismatch',
        'tollgate asks for ' + units + ' base units, but the bill shown was ' + billUnits + '; nothing was paid.'
      );
    }
    var offer = await loadContract(a.contract_url, a.contract_hash, checkBasketTerms);
    var terms = offer.terms;
    if (toBaseUnits(terms.amount, terms.decimals) !== units) {
      throw paymentError('bill_mismatch', 'The payment does not pay what the basket\'s contract says; nothing was paid.');
    }
    var paid = p.state === 'paid';
    if (!paid && (!ADDRESS.test(p.address || '') || units <= 0n || !isStr(p.status_url))) throw malformed('the checkout');
    var statusUrl = isStr(p.status_url) ? httpUrl(p.status_url, 'the status URL') : BASE + '/' + p.payment_id + '/status.json';
    var ttl = isInt(terms.access_ttl) ? terms.access_ttl : 0;
    var entry = {
      hash: offer.hash,
      state: 'claimed',
      base: BASE,
      basket_id: basket.id,
      scope: terms.scope !== undefined ? terms.scope : null,
      resource: isStr(terms.resource) ? terms.resource : null,
      merchant: isStr(terms.merchant) ? terms.merchant : null,
      summary: isStr(terms.summary) ? terms.summary : 'Basket ' + basket.id,
      contract_url: offer.contractUrl,
      contract_token: offer.token,
      pay_url: BASE + '/pay',
      offer_url: null,
      fulfillment_url: isStr(terms.fulfillment_url) ? httpUrl(terms.fulfillment_url, 'the fulfillment URL') : location.href,
      payment_id: p.payment_id,
      claim_token: p.claim_token,
      receipt: null,
      address: p.address || null,
      amount: fromBaseUnits(units, terms.decimals),
      amount_base_units: units.toString(),
      decimals: terms.decimals,
      access_ttl: ttl,
      token: isStr(p.token) ? p.token : terms.token,
      chain_id: isInt(p.chain_id) ? p.chain_id : terms.chain_id,
      eip681: isStr(p.eip681) ? p.eip681 : '',
      status_url: statusUrl,
      receipt_url: isStr(p.receipt_url) ? httpUrl(p.receipt_url, 'the receipt URL') : statusUrl.replace(/status\.json$/, 'receipt'),
      qr_url: statusUrl.replace(/status\.json$/, 'qr.svg'),
      expires_at: isInt(p.expires_at) ? p.expires_at : null,
      // A late payment still unlocks: keep the entry as long as tollgate keeps the claim.
      exp: (isInt(p.expires_at) ? p.expires_at : nowSecs() + 3600) + ttl,
      products: [],
    };
    if (paid) entry.exp = Math.max(entry.exp, nowSecs() + ttl);
    return wallet.put(entry);
  }

  /** A receipt for a payment tollgate already calls paid (retried while it says 409). */
  async function receiptNow(entry, ui) {
    for (;;) {
      var done = await fetchReceipt(entry);
      if (done) return done;
      await pause(config.pollMs, ui);
      if (ui.closed) throw closedError();
    }
  }

  // The basket this browser has open at this tollgate (its secret is also tollgate's
  // HttpOnly cookie, which keeps a second basket from being opened): kept so a reload
  // or another tab can take it up again (tollgate.resumeShoppingBasket).
  var OPEN_BASKET = 'tollgate:basket';

  function openBasket() {
    try {
      var b = JSON.parse(readRaw(OPEN_BASKET));
      return b && b.base === BASE && isStr(b.id) && isStr(b.secret) ? b : null;
    } catch (e) {
      return null;
    }
  }

  /**
   * The seed's ShoppingBasket over tollgate's basket endpoints. `items`, `extras`
   * (ShoppingItems) and `totalBill` are tollgate's, decimal strings, refreshed from
   * every answer; `challengeType` ("url" unless the page sets "text" or "image" before
   * checkout) is the challenge checkout asks for.
   */
  class ShoppingBasket {
    constructor(created) {
      // Not enumerable: a page that serialises the basket does not leak its secret.
      Object.defineProperty(this, '_secret', { value: created.basket_secret, writable: true });
      Object.defineProperty(this, '_run', { value: null, writable: true });
      Object.defineProperty(this, '_refunds', { value: new Map(), writable: true });
      this.id = created.basket_id;
      this.state = 'open';
      this.serviceProviderID = null;
      this.customerID = null;
      this.shopID = null;
      this.currency = '0xBTC';
      this.items = [];
      this.extras = [];
      this.totalBill = '0';
      this.totalBill_base_units = '0';
      this.challengeType = 'url';
      /** After checkout: `{type, value}` (null when nothing was to be paid). */
      this.challenge = null;
      /** After checkout: the payment (address, amount, eip681, status_url, …). */
      this.payment = null;
      /** The latest status.json of that payment. */
      this.paymentStatus = null;
      this.contractHash = null;
      /** Once paid: the receipt (also stored in the wallet and set as tollgate's cookie). */
      this.receipt = null;
      /** A page's `function (status)` hearing each status.json while checkout waits. */
      this.onstatus = null;
      this._view(created.basket);
      if (this.state === 'open' || this.state === 'checked_out') {
        writeRaw(OPEN_BASKET, JSON.stringify({ base: BASE, id: this.id, secret: this._secret }));
      }
    }

    _path(rest) {
      return '/' + encodeURIComponent(this.id) + (rest || '');
    }

    /** Takes tollgate's view of the basket (every answer carries it). */
    _view(v) {
      var copy = function (list) {
        return list.map(function (i) { return Object.assign({}, i); });
      };
      if (!v || typeof v !== 'object' || !Array.isArray(v.items) || !Array.isArray(v.extras) || !isStr(v.totalBill)) {
        throw malformed('a basket call');
      }
      this.state = isStr(v.state) ? v.state : this.state;
      this.serviceProviderID = v.serviceProviderID !== undefined ? v.serviceProviderID : this.serviceProviderID;
      this.customerID = v.customerID !== undefined ? v.customerID : this.customerID;
      this.shopID = v.shopID !== undefined ? v.shopID : this.shopID;
      this.currency = isStr(v.currency) ? v.currency : this.currency;
      this.items = copy(v.items);
      this.extras = copy(v.extras);
      this.totalBill = v.totalBill;
      if (isStr(v.totalBill_base_units)) this.totalBill_base_units = v.totalBill_base_units;
      var c = v.checkout;
      if (c && typeof c === 'object' && c.payment && !this.payment) {
        this.payment = c.payment;
        this.challenge = c.challenge || null;
      }
      if (this.state !== 'open' && this.state !== 'checked_out') this._forget();
      return this;
    }

    /** No longer this browser's open basket. */
    _forget() {
      var b = openBasket();
      if (b && b.id === this.id) removeRaw(OPEN_BASKET);
    }

    /** Runs `work`; its result's arguments go to `success`, a failure to `error`. */
    _do(success, error, work) {
      work().then(
        function (args) { callBack(success, args); },
        function (e) { callBack(error, [asPaymentError(e)]); }
      );
    }

    /**
     * Adds `item` (`{productID, description, currency, itemPrice, itemCount}`; the
     * price a JSON number or a decimal string, sent as written). A refund (negative
     * itemPrice) without a `receipt` carries the stored receipt that bought it, if any.
     */
    addItem(success, error, item) {
      var self = this;
      this._do(success, error, async function () {
        var body = itemBody(item);
        var from = null;
        if (isRefund(body.itemPrice)) {
          if (body.receipt === undefined) {
            var held = heldReceipt(String(body.productID));
            if (held) {
              body.receipt = held.receipt;
              from = held.hash;
            }
          } else {
            var named = wallet.list().find(function (e) { return e.receipt === body.receipt; });
            from = named ? named.hash : null;
          }
        }
        self._view(await basketCall('POST', self._path('/items'), self._secret, body));
        if (from) self._refunds.set(String(body.productID), from);
        return [];
      });
    }

    /** Recomputes the bill (itemsPrice, extras, totalBill). */
    update(success, error) {
      var self = this;
      this._do(success, error, async function () {
        self._view(await basketCall('POST', self._path('/update'), self._secret, {}));
        return [];
      });
    }

    /**
     * Checks out: tollgate mints the contract and the payment; `challengeCallback(type,
     * value)` presents the challenge (not called when nothing is to be paid);
     * `success` is called only once the payment is paid and its receipt stored,
     * `error` with `payment_charge_failed` when it expires or ends underpaid. A new
     * checkout call replaces a pending one (whose callbacks are then never called).
     */
    checkout(success, error, challengeCallback) {
      var self = this;
      if (this._run) this._run.stop();
      var ui = quietUi(function (s) {
        self.paymentStatus = s;
        callBack(self.onstatus, [s]);
      });
      var run = {
        done: false,
        ui: ui,
        stop: function () {
          run.done = true;
          ui.dismiss();
          if (self._run === run) self._run = null;
        },
        end: function (f, args) {
          if (run.done) return;
          run.stop();
          callBack(f, args);
        },
        fail: function (e) {
          run.end(error, [asPaymentError(e)]);
        },
      };
      this._run = run;
      var billUnits = /^[0-9]+$/.test(this.totalBill_base_units || '') ? BigInt(this.totalBill_base_units) : null;
      (async function () {
        var type = self.challengeType ? String(self.challengeType) : 'url';
        var a = await basketCall('POST', self._path('/checkout'), self._secret, { challenge: type });
        var entry = await checkedOut(self, a, billUnits);
        self.payment = a.payment;
        self.contractHash = entry.hash;
        self.challenge = a.challenge || null;
        self.state = 'checked_out';
        if (run.done) return false;
        var paidAlready = a.payment.state === 'paid';
        if (!paidAlready && a.challenge && isStr(a.challenge.type)) {
          callBack(challengeCallback, [a.challenge.type, a.challenge.value]);
        }
        var done = paidAlready ? await receiptNow(entry, ui) : await settle(entry, ui);
        if (run.done) return false;
        // What this receipt holds (a later refund needs it), and what it no longer does.
        var refunds = [];
        done.products = self.items
          .filter(function (i) {
            if (isRefund(i.itemPrice)) refunds.push(String(i.productID));
            return !isRefund(i.itemPrice);
          })
          .map(function (i) { return String(i.productID); });
        wallet.put(done);
        refunds.forEach(function (id) {
          var old = self._refunds.get(id);
          var e = old && wallet.get(old);
          if (!e || !Array.isArray(e.products)) return;
          e.products = e.products.filter(function (x) { return x !== id; });
          if (e.products.length) wallet.put(e);
          else wallet.remove(e.hash);
        });
        self.receipt = done.receipt;
        self.state = 'paid';
        self._forget();
        try {
          self._view(await basketCall('GET', self._path(), self._secret));
        } catch (e) {
          // the view is a courtesy: the payment is done
        }
        return true;
      })().then(
        function (ok) {
          if (ok) run.end(success, []);
        },
        function (e) {
          if (e && e.code === 'closed') return; // released or replaced: nobody is waiting
          run.fail(e);
        }
      );
    }

    /**
     * The payer's answer to a text or image challenge (a transaction hash). Its
     * failure (`payment_authentication_failed`, …) ends the pending checkout through
     * that checkout's error callback; no answer (null, empty) too. Resolves to whether
     * tollgate accepted it.
     */
    answerChallenge(userResponse) {
      var self = this;
      var run = this._run;
      var fail = function (e) {
        if (run && !run.done) run.fail(e);
        return false;
      };
      var answer = userResponse === null || userResponse === undefined ? '' : String(userResponse).trim();
      if (!answer) {
        return Promise.resolve(fail(paymentError('payment_authentication_failed', 'The challenge was not answered; nothing was paid.')));
      }
      return basketCall('POST', this._path('/challenge'), this._secret, { response: answer }).then(
        function (j) {
          if (!j || j.accepted !== true) return fail(paymentError('payment_authentication_failed', 'tollgate did not accept the answer.'));
          if (j.payment && isStr(j.payment.state) && run && !run.done) run.ui.showState(j.payment);
          return true;
        },
        fail
      );
    }

    /**
     * Releases the basket (an unpaid checkout is cancelled; a pending checkout's
     * callbacks are then never called). Resolves to whether tollgate released it.
     */
    release() {
      var self = this;
      if (this._run) this._run.stop();
      return basketCall('DELETE', this._path(), this._secret).then(
        function (v) {
          try {
            self._view(v);
          } catch (e) {
            self.state = 'released';
          }
          self._forget();
          return true;
        },
        function (e) {
          if (window.console) console.warn('tollgate: releasing basket ' + self.id + ': ' + e.message);
          return false;
        }
      );
    }
  }

  /**
   * The basket this browser still has open at this tollgate (after a reload, or from
   * another tab): `success(basket)` with tollgate's view of it, or `error` with
   * `basket_not_open`. A basket already checked out resumes its payment when the page
   * calls `checkout` again (the same payment and challenge).
   */
  function resumeShoppingBasket(success, error) {
    var known = openBasket();
    var fail = function (e) {
      if (known && e && e.code === 'basket_not_open') removeRaw(OPEN_BASKET);
      callBack(error, [asPaymentError(e)]);
    };
    if (!known) {
      fail(paymentError('basket_not_open', 'This browser has no open basket at this shop.'));
      return;
    }
    basketCall('GET', '/' + encodeURIComponent(known.id), known.secret)
      .then(function (v) {
        var b = new ShoppingBasket({ basket_id: known.id, basket_secret: known.secret, basket: v });
        if (b.state !== 'open' && b.state !== 'checked_out') {
          throw paymentError('basket_not_open', 'This browser\'s last basket is ' + b.state + '.');
        }
        return b;
      })
      .then(function (b) { callBack(success, [b]); }, fail);
  }

  /**
   * webinos.payment.createShoppingBasket: a basket at tollgate (`serviceProviderID`
   * "0xBTC", `shopID` the configured shop); `success(basket)` or `error({code, message})`.
   */
  function createShoppingBasket(success, error, serviceProviderID, customerID, shopID) {
    var str = function (v) {
      return v === undefined || v === null ? v : String(v);
    };
    basketCall('POST', '', null, {
      serviceProviderID: str(serviceProviderID),
      customerID: str(customerID),
      shopID: str(shopID),
    })
      .then(function (j) {
        if (!j || !isStr(j.basket_id) || !isStr(j.basket_secret) || !j.basket) throw malformed('createShoppingBasket');
        return new ShoppingBasket(j);
      })
      .then(
        function (b) { callBack(success, [b]); },
        function (e) { callBack(error, [asPaymentError(e)]); }
      );
  }

  // ---- Web Monetization: monetize() (SPEC section 10) ------------------------------------

  /** The `h` claim of a tg1 receipt (lowercase hex), or null. Not verified: only a key. */
  function receiptHash(receipt) {
    try {
      var part = String(receipt).split('.')[1] || '';
      var b64 = part.replace(/-/g, '+').replace(/_/g, '/');
      var bin = atob(b64 + '==='.slice((b64.length + 3) % 4));
      var bytes = Uint8Array.from(bin, function (c) { return c.charCodeAt(0); });
      var claims = JSON.parse(new TextDecoder().decode(bytes));
      var h = isStr(claims.h) ? claims.h.toLowerCase() : '';
      return HASH.test(h) ? h : null;
    } catch (e) {
      return null;
    }
  }

  /**
   * Stores a Web Monetization receipt in the wallet store. Entries are keyed by the
   * receipt's `h` claim, as every other entry is (for a purchase, `h` is its contract
   * hash; for Web Monetization, tollgate's unlock hash, which is never a contract
   * hash), so `tollgate.fetch` and scope lookups find it like any other receipt.
   * `kind: "wm"` tells it apart; it has no contract, payment id or claim token.
   */
  function storeWmReceipt(j, resource, incomingPayment) {
    var h = receiptHash(j.receipt);
    if (!h) return null;
    return wallet.put({
      hash: h,
      kind: 'wm',
      state: 'paid',
      base: BASE,
      scope: j.scope !== undefined ? j.scope : resource,
      resource: resource,
      merchant: null,
      summary: 'Web Monetization: ' + resource,
      fulfillment_url: new URL(resource, location.href).href,
      incoming_payment: incomingPayment,
      received: isStr(j.received) ? j.received : null,
      required: isStr(j.required) ? j.required : null,
      payment_id: null,
      claim_token: null,
      receipt: j.receipt,
      exp: j.expires_at,
    });
  }

  /** One `POST {pay_prefix}/wm/verify`: what tollgate answered, classified. */
  async function wmVerifyOnce(incomingPayment, resource) {
    var r;
    try {
      r = await postJson(BASE + '/wm/verify', { incomingPayment: incomingPayment, resource: resource });
    } catch (e) {
      return { kind: 'unavailable', retryAfter: null, error: new TollgateError('unavailable', 'Could not reach tollgate to verify the payment (' + e.message + ').') };
    }
    var j = await readJson(r);
    var say = function (code, fallback) {
      return new TollgateError(isStr(j.code) ? j.code : code, isStr(j.message) ? j.message : fallback, {
        status: r.status,
        incomingPayment: incomingPayment,
      });
    };
    if (r.status === 200) {
      if (!isStr(j.receipt) || j.receipt.indexOf('tg1.') !== 0 || !isInt(j.expires_at)) {
        return { kind: 'fatal', error: say('bad_answer', 'tollgate\'s answer to the verification is malformed.') };
      }
      return { kind: 'ok', answer: j };
    }
    if (r.status === 402 && j.code === 'insufficient') {
      // Decimal strings, passed on as they are: never parsed into floats.
      return { kind: 'insufficient', received: isStr(j.received) ? j.received : null, required: isStr(j.required) ? j.required : null };
    }
    if (r.status === 503 || r.status === 429) {
      var after = /^[0-9]{1,6}$/.test(r.headers.get('Retry-After') || '') ? Number(r.headers.get('Retry-After')) : null;
      return { kind: 'unavailable', retryAfter: after, error: say('unavailable', 'tollgate could not verify the payment now (HTTP ' + r.status + ').') };
    }
    return { kind: 'fatal', error: say('verify_refused', 'tollgate refused the payment (HTTP ' + r.status + ').') };
  }

  var monetizing = null; // the running monetize(): one per page

  /**
   * Web Monetization for this page: listens (on `document`) for the `monetization`
   * events a Web Monetization agent fires on the page's `<link rel="monetization">`
   * (they bubble; the link may come later), and for each one with an
   * `incomingPayment` asks tollgate to verify it: `POST {pay_prefix}/wm/verify
   * {incomingPayment, resource}`, `resource` being this page's path. tollgate reads
   * that incoming payment from the receiver's Open Payments server and answers
   *
   *   200 {receipt, scope, expires_at, received, required} + the receipt cookie:
   *       the receipt is stored (wallet store, keyed by its `h` claim), listening
   *       stops, and the page is reloaded (`location.reload()`), now unlocked; with
   *       `reload: false` the returned promise resolves with `{receipt, scope,
   *       expires_at, received, required}` instead;
   *   402 {code: "insufficient", received, required}: the money lags the event; the
   *       same incoming payment is asked about again with backoff (`retries` times,
   *       `backoffMs` doubling up to 8×), and again at once on each new event for it;
   *   503 / 429 (Retry-After) or tollgate unreachable: asked again after Retry-After
   *       (at most 60 s), at most `retries` times; then reported (`onerror`), and the
   *       next event tries again;
   *   anything else (400 foreign_incoming_payment, 403 wrong_wallet, …): reported
   *       (`onerror`), listening stops, and the promise rejects with a TollgateError
   *       (its `code` tollgate's, its `status` the HTTP status).
   *
   * Only one verification per incoming payment is in flight at a time: an event for
   * one already being verified marks it to be asked again, never a second request.
   * Amounts are tollgate's decimal strings, in the wallet's asset, never floats.
   * Call it where the page is locked (tollgate's paywall): each unlock consumes
   * `wm_price` of what was received. Calling it again returns the same promise.
   *
   * `opts`: `{reload (default true), resource (default location.pathname),
   * retries (default 5), backoffMs (default 1000), onerror(err), onprogress(info)}`;
   * `info` is `{state: "verifying" | "insufficient" | "waiting" | "unavailable" |
   * "unlocked", incomingPayment, received, required}` ("waiting": the retries for
   * that incoming payment are spent; the next event for it asks again).
   */
  function monetize(newOpts) {
    // A second call (a page script after tollgate's paywall made the first) updates the
    // options of the running session and returns its promise: one session per page.
    if (monetizing) {
      if (newOpts && typeof newOpts === 'object') Object.assign(monetizing.opts, newOpts);
      return monetizing.promise;
    }
    var opts = Object.assign({}, newOpts || {});
    var resource = isStr(opts.resource) && opts.resource.charAt(0) === '/' ? opts.resource : location.pathname;
    var states = new Map(); // incomingPayment -> {running, again, wake}
    var run = { done: false, promise: null, opts: opts };
    var settle = {};
    run.promise = new Promise(function (resolve, reject) {
      settle.resolve = resolve;
      settle.reject = reject;
    });
    run.promise.catch(function () {}); // reported through onerror as well
    monetizing = run;

    var retriesOf = function () {
      return isInt(opts.retries) ? opts.retries : 5;
    };
    var backoffOf = function () {
      return isInt(opts.backoffMs) && opts.backoffMs > 0 ? opts.backoffMs : 1000;
    };
    var progress = function (info) {
      callBack(opts.onprogress, [info]);
    };
    var stop = function () {
      run.done = true;
      document.removeEventListener('monetization', onEvent);
      states.forEach(function (s) { if (s.wake) s.wake(); });
      if (monetizing === run) monetizing = null;
    };
    var wait = function (s, ms) {
      return new Promise(function (resolve) {
        var t = setTimeout(done, ms);
        function done() {
          clearTimeout(t);
          s.wake = null;
          resolve();
        }
        s.wake = done;
      });
    };

    async function verify(url, s) {
      var lagging = 0;
      var unavailable = 0;
      while (!run.done) {
        s.again = false;
        progress({ state: 'verifying', incomingPayment: url, received: null, required: null });
        var out = await wmVerifyOnce(url, resource);
        if (run.done) return;
        if (out.kind === 'ok') {
          var j = out.answer;
          if (!storeWmReceipt(j, resource, url) && window.console) {
            console.warn('tollgate: the Web Monetization receipt has no readable hash; it was not stored (the cookie still holds it)');
          }
          stop();
          progress({ state: 'unlocked', incomingPayment: url, received: j.received, required: j.required });
          var value = { receipt: j.receipt, scope: j.scope, expires_at: j.expires_at, received: j.received, required: j.required };
          settle.resolve(value);
          if (opts.reload !== false) location.reload();
          return;
        }
        if (out.kind === 'insufficient') {
          progress({ state: 'insufficient', incomingPayment: url, received: out.received, required: out.required });
          if (s.again) {
            lagging = 0; // a new event meanwhile: maybe more money, ask at once
            continue;
          }
          if (lagging >= retriesOf()) {
            progress({ state: 'waiting', incomingPayment: url, received: out.received, required: out.required });
            return; // the next event for it asks again
          }
          await wait(s, backoffOf() * Math.pow(2, Math.min(lagging, 3)));
          lagging = s.again ? 0 : lagging + 1; // an event meanwhile: a fresh budget
          continue;
        }
        if (out.kind === 'unavailable') {
          progress({ state: 'unavailable', incomingPayment: url, received: null, required: null });
          if (unavailable >= retriesOf()) {
            callBack(opts.onerror, [out.error]);
            return; // the next event tries again
          }
          unavailable += 1;
          var after = out.retryAfter !== null ? Math.min(out.retryAfter, 60) * 1000 : backoffOf() * Math.pow(2, Math.min(unavailable, 3));
          await wait(s, Math.max(after, 100));
          continue;
        }
        stop();
        callBack(opts.onerror, [out.error]);
        settle.reject(out.error);
        return;
      }
    }

    function onEvent(ev) {
      if (run.done) return;
      var url = ev && ev.incomingPayment;
      if (!isStr(url) || !url) return; // an agent that names no incoming payment: nothing to verify
      try {
        url = httpUrl(url, 'the incoming payment');
      } catch (e) {
        return;
      }
      var s = states.get(url);
      if (s && s.running) {
        s.again = true;
        if (s.wake) s.wake();
        return;
      }
      s = { running: true, again: false, wake: null };
      states.set(url, s);
      verify(url, s).then(
        function () { s.running = false; },
        function (e) {
          s.running = false;
          if (window.console) console.error('tollgate: monetize', e);
        }
      );
    }

    document.addEventListener('monetization', onEvent);
    return run.promise;
  }

  // Drop expired entries on load.
  wallet.list();

  var api = {
    version: VERSION,
    base: BASE,
    config: config,
    offerContractFrom: offerContractFrom,
    executePayment: executePayment,
    fetch: tollgateFetch,
    resume: resumePayment,
    wallet: wallet,
    jcs: jcs,
    contractHash: contractHash,
    toBaseUnits: toBaseUnits,
    fromBaseUnits: fromBaseUnits,
    TollgateError: TollgateError,
    createShoppingBasket: createShoppingBasket,
    resumeShoppingBasket: resumeShoppingBasket,
    ShoppingBasket: ShoppingBasket,
    payEip681: payEip681,
    parseEip681: parseEip681,
    monetize: monetize,
  };
  window.tollgate = api;
  var taler = window.taler && typeof window.taler === 'object' ? window.taler : (window.taler = {});
  taler.offerContractFrom = offerContractFrom;
  taler.executePayment = executePayment;
  // The seed's webinos Payment API, added to an existing `webinos` (never replacing it).
  var existing = window.webinos;
  var webinos = existing && (typeof existing === 'object' || typeof existing === 'function') ? existing : (window.webinos = {});
  try {
    var payment = webinos.payment && typeof webinos.payment === 'object' ? webinos.payment : (webinos.payment = {});
    payment.createShoppingBasket = createShoppingBasket;
  } catch (e) {
    // a read-only webinos.payment of another implementation: ours stays on window.tollgate
    if (window.console) console.warn('tollgate: webinos.payment is not writable; use tollgate.createShoppingBasket');
  }
})();
