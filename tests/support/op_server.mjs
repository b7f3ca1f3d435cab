// A strict local Open Payments server for tollgate's Web Monetization tests: the
// receiving wallet addresses, tollgate's client wallet address (its JWKS), a GNAP
// authorization server (non-interactive grants) and a resource server (incoming
// payments), on 127.0.0.1 with an ephemeral port, plain http or (with --cert/--key)
// https. No Open Payments server (Rafiki) installs here; this one is built from
// Interledger's own pieces, from tests/op/node_modules:
//
//   * the OpenAPI specs bundled with @interledger/open-payments, validated with
//     @interledger/openapi: every request it serves, and every response it sends
//     (a response of its own that fails is a bug here, reported as a violation);
//   * @interledger/http-signature-utils' validateSignatureHeaders + validateSignature
//     (RFC 9421, Ed25519), with the client's key fetched over HTTP from its wallet
//     address's jwks.json on every signed request, as Rafiki does, plus what the
//     library leaves open: one signature labelled sig1, a keyid, a `created` within
//     5 minutes, `content-digest` covered whenever there is a body (the digest
//     checked over the body re-serialised as compact JSON, as Rafiki does), and
//     `authorization` covered whenever that header is sent.
//
// Strict where it matters: a request that fails the spec, a signature check, or
// asks for what this server never grants (interaction, a grant without
// incoming-payment `read-all`, an unknown token, a malformed Authorization) is
// recorded as a *violation* {method, url, why} and answered with an error; a test
// asserts there were none. Expired tokens (401 + WWW-Authenticate), unknown
// incoming payments (404), and refusals the test asked for (break-signatures) are
// normal answers, counted, not violations.
//
// Usage: node op_server.mjs [--cert PEM --key PEM] [--client-jwk FILE]
//                           [--client-kid KID] [--token-ttl SECONDS]
// Prints `op_server listening http(s)://127.0.0.1:<port>` once ready. For https the
// server fetches its own jwks.json over TLS: start it with NODE_EXTRA_CA_CERTS
// naming the CA that signed --cert.
//
// The control API (JSON, under /_control/, never part of Open Payments):
//   POST /_control/incoming-payments {wallet, value?="0", assetCode?, assetScale?,
//        completed?, expiresInSecs?}            -> 201 {url, id, walletAddress}
//   POST /_control/received {url, value}         -> 200 {url, receivedAmount}
//   POST /_control/expire-tokens                 -> 200 {expired}
//   POST /_control/break-signatures {broken?=true} -> 200 {broken}
//   POST /_control/delay {ms}                    -> 200 {ms}
//   POST /_control/token-ttl {seconds}           -> 200 {seconds}
//   GET  /_control/violations                    -> 200 [{method, url, why}]
//   GET  /_control/counters                      -> 200 {grants, ...}
//   GET  /_control/tokens                        -> 200 [every access and continue token issued]
//   POST /_control/shutdown                      -> 200 {ok: true}, then exits

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';

// The Interledger packages live in tests/op/ (see its package.json).
const require = createRequire(new URL('../op/package.json', import.meta.url));
const { getAuthServerOpenAPI, getResourceServerOpenAPI, getWalletAddressServerOpenAPI } = require('@interledger/open-payments');
const { validateSignatureHeaders, validateSignature, getKeyId } = require('@interledger/http-signature-utils');
const { isValidationError } = require('@interledger/openapi');

// ---- arguments ---------------------------------------------------------------------

const args = process.argv.slice(2);
function arg(name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
const certFile = arg('--cert');
const keyFile = arg('--key');
if (!!certFile !== !!keyFile) {
  console.error('op_server: --cert and --key go together');
  process.exit(2);
}
const scheme = certFile ? 'https' : 'http';
let tokenTtl = Number(arg('--token-ttl') || 600);

/** tollgate's client JWKs (public): from --client-jwk (a JWK, or {keys: [...]}). */
let clientKeys = [];
if (arg('--client-jwk')) {
  const j = JSON.parse(fs.readFileSync(arg('--client-jwk'), 'utf8'));
  clientKeys = Array.isArray(j.keys) ? j.keys : [j];
}

// ---- the specs ---------------------------------------------------------------------

const [AS, RS, WA] = await Promise.all([getAuthServerOpenAPI(), getResourceServerOpenAPI(), getWalletAddressServerOpenAPI()]);
const V = {
  walletReq: WA.createRequestValidator({ path: '/', method: 'get' }),
  walletRes: WA.createResponseValidator({ path: '/', method: 'get' }),
  jwksReq: WA.createRequestValidator({ path: '/jwks.json', method: 'get' }),
  jwksRes: WA.createResponseValidator({ path: '/jwks.json', method: 'get' }),
  grantReq: AS.createRequestValidator({ path: '/', method: 'post' }),
  grantRes: AS.createResponseValidator({ path: '/', method: 'post' }),
  incomingReq: RS.createRequestValidator({ path: '/incoming-payments/{id}', method: 'get' }),
  incomingRes: RS.createResponseValidator({ path: '/incoming-payments/{id}', method: 'get' }),
};

// ---- state ---------------------------------------------------------------------------

let base = ''; // set once listening
const RECEIVERS = { alice: 'USD', bob: 'USD', eur: 'EUR' };
const CLIENT = 'tollgate';
const violations = [];
const counters = {
  wallet_reads: 0,
  jwks_reads: 0,
  grants: 0,
  grants_refused: 0,
  incoming_reads_auth: 0,
  incoming_reads_public: 0,
  unauthorized: 0,
  expired_token_refusals: 0,
  forced_signature_refusals: 0,
  not_found: 0,
  control_calls: 0,
};
/** token value -> {id, client, access, expiresAt (ms)} */
const tokens = new Map();
// Every token value handed out (access and continue), for tests that look for them
// where they must not be (tollgate's log).
const issued = [];
/** id -> incoming payment (the full, authenticated view) */
const incoming = new Map();
let brokenSignatures = false;
let delayMs = 0;

/** A refusal: the client did something the spec (or this strict server) does not allow. */
class Violation extends Error {
  constructor(status, why, headers) {
    super(why);
    this.status = status;
    this.headers = headers || {};
  }
}
/** A normal error answer (not the client's fault, or induced by the test). */
class Answer extends Error {
  constructor(status, body, headers) {
    super(JSON.stringify(body));
    this.status = status;
    this.body = body;
    this.headers = headers || {};
  }
}

function violationText(e) {
  if (isValidationError(e)) return e.errors.map((x) => x.message).join('; ');
  return String((e && e.message) || e);
}

// ---- HTTP plumbing ---------------------------------------------------------------------

function send(res, status, body, headers) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    ...(headers || {}),
  });
  res.end(text);
}

async function readBody(req) {
  const chunks = [];
  let n = 0;
  for await (const c of req) {
    n += c.length;
    if (n > 1 << 20) throw new Violation(413, 'request body over 1 MiB');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The absolute URL the client addressed (what it signs as @target-uri). */
function targetUri(req) {
  return `${scheme}://${req.headers.host}${req.url}`;
}

function gnapError(code, description) {
  return { error: { code, description } };
}

// ---- signatures ------------------------------------------------------------------------

/** GETs JSON from this server itself (as Rafiki fetches a client's keys). */
async function fetchJson(url) {
  if (!url.startsWith(base + '/')) throw new Violation(400, `client wallet address ${url} is not on this test server`);
  const r = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!r.ok) throw new Violation(400, `GET ${url}: ${r.status}`);
  return r.json();
}

/** Parses the sig1 parameters this server insists on; a Violation otherwise. */
function sigParams(headers) {
  const input = headers['signature-input'];
  const sig = headers['signature'];
  if (typeof input !== 'string' || typeof sig !== 'string') throw new Violation(401, 'no Signature / Signature-Input headers');
  // Exactly one signature, labelled sig1 (what http-signature-utils can verify).
  if (!/^sig1=\(/.test(input) || /,\s*[A-Za-z0-9_-]+=\(/.test(input)) {
    throw new Violation(401, `Signature-Input must hold one signature labelled sig1: ${input}`);
  }
  if (!/^sig1=:[A-Za-z0-9+/]+={0,2}:$/.test(sig)) throw new Violation(401, `Signature must be sig1=:<base64>: (${sig.slice(0, 40)}…)`);
  const inner = /^sig1=\(([^)]*)\)/.exec(input)[1];
  const components = inner.split(' ').filter(Boolean);
  for (const c of components) {
    if (!/^"[^"]+"$/.test(c)) throw new Violation(401, `component ${c} is not a quoted string (RFC 9421 inner list)`);
  }
  const names = components.map((c) => c.slice(1, -1));
  const keyid = getKeyId(input);
  if (!keyid) throw new Violation(401, 'Signature-Input has no keyid');
  const created = /;created=([0-9]+)/.exec(input);
  if (!created) throw new Violation(401, 'Signature-Input has no created');
  const skew = Math.abs(Date.now() / 1000 - Number(created[1]));
  if (skew > 300) throw new Violation(401, `Signature-Input created is ${Math.round(skew)} s away from now`);
  return { names, keyid };
}

/**
 * Verifies the request's signature with `jwks` (the client's keys): throws a
 * Violation (401) on anything wrong; an Answer (401) when the test broke signatures.
 */
async function checkSignature(req, rawBody, parsedBody, jwks, required) {
  const { names, keyid } = sigParams(req.headers);
  for (const c of required) {
    if (!names.includes(c)) throw new Violation(401, `signature does not cover ${c} (covers ${names.join(' ')})`);
  }
  if (rawBody.length > 0) {
    for (const c of ['content-digest', 'content-length', 'content-type']) {
      if (!names.includes(c)) throw new Violation(401, `a request with a body must sign ${c} (covers ${names.join(' ')})`);
    }
    const compact = JSON.stringify(parsedBody);
    if (compact !== rawBody) {
      throw new Violation(401, 'body is not compact JSON: Rafiki checks Content-Digest over JSON.stringify(body), which differs from the bytes sent');
    }
  }
  const requestLike = {
    method: req.method,
    url: targetUri(req),
    headers: req.headers,
    body: rawBody.length > 0 ? JSON.stringify(parsedBody) : undefined,
  };
  if (!validateSignatureHeaders(requestLike)) {
    throw new Violation(401, 'validateSignatureHeaders refused the signature headers (components, digest, length, type)');
  }
  const jwk = (jwks.keys || []).find((k) => k.kid === keyid);
  if (!jwk) throw new Violation(401, `no key with kid ${JSON.stringify(keyid)} in the client's JWKS`);
  if (brokenSignatures) {
    counters.forced_signature_refusals += 1;
    throw new Answer(401, gnapError('invalid_client', 'signature refused (break-signatures)'));
  }
  let ok = false;
  try {
    ok = await validateSignature(jwk, requestLike);
  } catch (e) {
    throw new Violation(401, `validateSignature threw: ${e.message}`);
  }
  if (!ok) throw new Violation(401, 'validateSignature: the signature does not verify with the client key');
}

// ---- documents ---------------------------------------------------------------------------

function walletDoc(name) {
  const doc = {
    id: `${base}/${name}`,
    publicName: name === CLIENT ? 'tollgate (test client)' : `${name[0].toUpperCase()}${name.slice(1)} (test receiver)`,
    assetCode: RECEIVERS[name] || 'USD',
    assetScale: 2,
    authServer: `${base}/auth`,
    resourceServer: `${base}/rs`,
  };
  return doc;
}

function publicView(p) {
  return { receivedAmount: { ...p.receivedAmount }, authServer: `${base}/auth` };
}

function fullView(p) {
  const v = {
    id: p.id,
    walletAddress: p.walletAddress,
    completed: p.completed,
    receivedAmount: { ...p.receivedAmount },
    createdAt: p.createdAt,
    metadata: p.metadata,
    methods: [],
  };
  if (p.expiresAt) v.expiresAt = p.expiresAt;
  return v;
}

/** Validates a response of ours against the spec; a failure is our bug (a violation). */
function checked(validator, status, body, what) {
  try {
    validator({ status, body });
  } catch (e) {
    throw new Violation(500, `op_server's own ${what} response fails the spec: ${violationText(e)}`);
  }
  return body;
}

function validateRequest(validator, req, body, params, what) {
  const r = { headers: req.headers, body: body === undefined ? {} : body, params: params || {}, query: {} };
  try {
    validator(r);
  } catch (e) {
    throw new Violation(400, `${what} request fails the spec: ${violationText(e)}`);
  }
}

// ---- handlers ------------------------------------------------------------------------

async function walletAddress(req, res, name, jwks) {
  if (req.method !== 'GET') throw new Violation(405, `${req.method} on a wallet address`);
  if (jwks) {
    validateRequest(V.jwksReq, req, undefined, {}, 'jwks.json');
    counters.jwks_reads += 1;
    const body = { keys: name === CLIENT ? clientKeys : [] };
    send(res, 200, checked(V.jwksRes, 200, body, 'jwks.json'), { 'Cache-Control': 'no-store' });
    return;
  }
  validateRequest(V.walletReq, req, undefined, {}, 'wallet address');
  counters.wallet_reads += 1;
  send(res, 200, checked(V.walletRes, 200, walletDoc(name), 'wallet address'), { 'Cache-Control': 'public, max-age=60' });
}

function parseJson(raw) {
  try {
    return JSON.parse(raw);
  } catch (e) {
    throw new Violation(400, `body is not JSON: ${e.message}`);
  }
}

async function grant(req, res) {
  if (req.method !== 'POST') throw new Violation(405, `${req.method} on the grant endpoint`);
  const raw = await readBody(req);
  const body = parseJson(raw);
  if (!/^application\/json\b/.test(req.headers['content-type'] || '')) {
    throw new Violation(400, `grant request Content-Type is ${req.headers['content-type']}, not application/json`);
  }
  validateRequest(V.grantReq, req, body, {}, 'grant');
  let jwks;
  let client;
  if (typeof body.client === 'string' || (body.client && typeof body.client.walletAddress === 'string')) {
    client = typeof body.client === 'string' ? body.client : body.client.walletAddress;
    jwks = await fetchJson(`${client.replace(/\/$/, '')}/jwks.json`);
  } else if (body.client && body.client.jwk) {
    client = null; // directed identity: the key comes with the grant
    jwks = { keys: [body.client.jwk] };
  } else {
    throw new Violation(400, 'grant request names no client');
  }
  await checkSignature(req, raw, body, jwks, ['@method', '@target-uri']);
  if (body.interact) {
    throw new Violation(400, 'this test server grants incoming-payment reading without interaction; tollgate must not ask for it');
  }
  const access = body.access_token.access;
  const readAll = access.some(
    (a) => a.type === 'incoming-payment' && Array.isArray(a.actions) && a.actions.includes('read-all')
  );
  if (!readAll) {
    counters.grants_refused += 1;
    throw new Violation(400, 'grant asks for no incoming-payment read-all: reading a payment the WM agent created needs it');
  }
  const id = crypto.randomUUID();
  const value = crypto.randomBytes(20).toString('hex').toUpperCase();
  tokens.set(value, { id, client, jwks: client ? null : jwks, access, expiresAt: Date.now() + tokenTtl * 1000 });
  counters.grants += 1;
  const continueToken = crypto.randomBytes(20).toString('hex').toUpperCase();
  issued.push(value, continueToken);
  const answer = {
    access_token: { value, manage: `${base}/auth/token/${id}`, expires_in: tokenTtl, access },
    continue: { access_token: { value: continueToken }, uri: `${base}/auth/continue/${id}` },
  };
  send(res, 200, checked(V.grantRes, 200, answer, 'grant'));
}

async function readIncoming(req, res, id) {
  if (req.method !== 'GET') throw new Violation(405, `${req.method} on an incoming payment (only GET is served here)`);
  validateRequest(V.incomingReq, req, undefined, { id }, 'incoming payment');
  const p = incoming.get(id);
  const auth = req.headers.authorization;
  if (auth === undefined) {
    if (!p) {
      counters.not_found += 1;
      throw new Answer(404, { error: { code: 'not_found', description: 'no such incoming payment' } });
    }
    counters.incoming_reads_public += 1;
    send(res, 200, checked(V.incomingRes, 200, publicView(p), 'public incoming payment'));
    return;
  }
  const parts = auth.split(' ');
  if (parts.length !== 2 || parts[0] !== 'GNAP' || !parts[1]) {
    throw new Violation(401, `Authorization must be "GNAP <token>", got ${JSON.stringify(auth.slice(0, 20))}…`, {
      'WWW-Authenticate': `GNAP as_uri=${base}/auth`,
    });
  }
  const t = tokens.get(parts[1]);
  if (!t) throw new Violation(401, 'unknown GNAP access token', { 'WWW-Authenticate': `GNAP as_uri=${base}/auth` });
  const jwks = t.client ? await fetchJson(`${t.client.replace(/\/$/, '')}/jwks.json`) : t.jwks;
  await checkSignature(req, '', undefined, jwks, ['@method', '@target-uri', 'authorization']);
  if (t.expiresAt <= Date.now()) {
    counters.expired_token_refusals += 1;
    throw new Answer(401, gnapError('invalid_token', 'access token expired'), { 'WWW-Authenticate': `GNAP as_uri=${base}/auth` });
  }
  const readAll = t.access.find((a) => a.type === 'incoming-payment' && a.actions.includes('read-all'));
  if (!readAll) throw new Violation(403, 'token holds no incoming-payment read-all');
  if (!p) {
    counters.not_found += 1;
    throw new Answer(404, { error: { code: 'not_found', description: 'no such incoming payment' } });
  }
  if (readAll.identifier && readAll.identifier.replace(/\/$/, '') !== p.walletAddress) {
    throw new Answer(403, { error: { code: 'forbidden', description: 'the grant is for another wallet address' } });
  }
  counters.incoming_reads_auth += 1;
  send(res, 200, checked(V.incomingRes, 200, fullView(p), 'incoming payment'));
}

// ---- the control API -------------------------------------------------------------------

const UINT64 = /^(0|[1-9][0-9]{0,19})$/;
function uint64(v, what) {
  if (typeof v !== 'string' || !UINT64.test(v) || BigInt(v) >= 2n ** 64n) {
    throw new Answer(400, { error: `${what} must be a uint64 decimal string` });
  }
  return v;
}

async function control(req, res, what) {
  counters.control_calls += 1;
  const raw = req.method === 'POST' ? await readBody(req) : '';
  let body = {};
  if (raw) {
    try {
      body = JSON.parse(raw);
    } catch (e) {
      throw new Answer(400, { error: 'control body is not JSON' });
    }
  }
  const route = `${req.method} ${what}`;
  switch (route) {
    case 'POST incoming-payments': {
      const wallet = String(body.wallet || '');
      if (!RECEIVERS[wallet] && wallet !== CLIENT) throw new Answer(400, { error: `unknown wallet ${wallet}` });
      const doc = walletDoc(wallet);
      const id = crypto.randomUUID();
      const now = Date.now();
      const p = {
        id: `${base}/rs/incoming-payments/${id}`,
        walletAddress: doc.id,
        completed: !!body.completed,
        receivedAmount: {
          value: uint64(body.value === undefined ? '0' : body.value, 'value'),
          assetCode: body.assetCode || doc.assetCode,
          assetScale: body.assetScale === undefined ? doc.assetScale : body.assetScale,
        },
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(now + 1000 * (body.expiresInSecs || 600)).toISOString(),
        metadata: { source: 'Web Monetization' },
      };
      incoming.set(id, p);
      send(res, 201, { url: p.id, id, walletAddress: p.walletAddress });
      return;
    }
    case 'POST received': {
      const prefix = `${base}/rs/incoming-payments/`;
      const url = String(body.url || '');
      const p = url.startsWith(prefix) ? incoming.get(url.slice(prefix.length)) : null;
      if (!p) throw new Answer(404, { error: `no incoming payment ${url}` });
      p.receivedAmount.value = uint64(body.value, 'value');
      send(res, 200, { url, receivedAmount: p.receivedAmount });
      return;
    }
    case 'POST expire-tokens': {
      const now = Date.now();
      let n = 0;
      for (const t of tokens.values()) {
        if (t.expiresAt > now) n += 1;
        t.expiresAt = Math.min(t.expiresAt, now);
      }
      send(res, 200, { expired: n });
      return;
    }
    case 'POST break-signatures':
      brokenSignatures = body.broken === undefined ? true : !!body.broken;
      send(res, 200, { broken: brokenSignatures });
      return;
    case 'POST delay':
      if (!Number.isSafeInteger(body.ms) || body.ms < 0 || body.ms > 600_000) throw new Answer(400, { error: 'ms: 0..600000' });
      delayMs = body.ms;
      send(res, 200, { ms: delayMs });
      return;
    case 'POST token-ttl':
      if (!Number.isSafeInteger(body.seconds) || body.seconds < 1) throw new Answer(400, { error: 'seconds: a positive integer' });
      tokenTtl = body.seconds;
      send(res, 200, { seconds: tokenTtl });
      return;
    case 'GET violations':
      send(res, 200, violations);
      return;
    case 'GET tokens':
      send(res, 200, issued);
      return;
    case 'GET counters':
      send(res, 200, { ...counters, tokens_issued: tokens.size, incoming_payments: incoming.size, broken_signatures: brokenSignatures, delay_ms: delayMs, token_ttl: tokenTtl });
      return;
    case 'POST shutdown':
      send(res, 200, { ok: true });
      setImmediate(() => process.exit(0));
      return;
    default:
      throw new Answer(404, { error: `no control route ${route}` });
  }
}

// ---- routing -------------------------------------------------------------------------

async function handle(req, res) {
  const path = req.url.split('?')[0];
  if (path.startsWith('/_control/')) return control(req, res, path.slice('/_control/'.length));
  if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
  let m;
  if (path === '/auth' || path === '/auth/') return grant(req, res);
  if ((m = /^\/rs\/incoming-payments\/([^/]+)$/.exec(path))) return readIncoming(req, res, decodeURIComponent(m[1]));
  // Wallet addresses: /<name> (the id) and /<name>/ are the same address.
  if ((m = /^\/([a-z]+)\/?$/.exec(path)) && (RECEIVERS[m[1]] || m[1] === CLIENT)) return walletAddress(req, res, m[1], false);
  if ((m = /^\/([a-z]+)\/jwks\.json$/.exec(path)) && (RECEIVERS[m[1]] || m[1] === CLIENT)) return walletAddress(req, res, m[1], true);
  counters.not_found += 1;
  throw new Answer(404, { error: { code: 'not_found', description: `nothing at ${path}` } });
}

function onRequest(req, res) {
  handle(req, res).catch((e) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (e.status === 401) counters.unauthorized += 1;
    if (e instanceof Answer) {
      send(res, e.status, e.body, e.headers);
      return;
    }
    const status = e instanceof Violation ? e.status : 500;
    const why = violationText(e);
    violations.push({ method: req.method, url: targetUri(req), why });
    console.error(`op_server violation: ${req.method} ${req.url}: ${why}`);
    const code = status === 401 ? 'invalid_client' : status === 403 ? 'forbidden' : 'invalid_request';
    send(res, status, gnapError(code, why), e.headers);
  });
}

const server = certFile
  ? https.createServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) }, onRequest)
  : http.createServer(onRequest);
server.keepAliveTimeout = 5000;
server.listen(0, '127.0.0.1', () => {
  base = `${scheme}://127.0.0.1:${server.address().port}`;
  process.stdout.write(`op_server listening ${base}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
