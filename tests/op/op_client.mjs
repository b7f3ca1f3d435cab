// One Open Payments request signed with Interledger's own client code
// (@interledger/http-signature-utils `createHeaders`, what @interledger/open-payments
// sends), or deliberately wrong, for tests/op_server.rs: it proves the local server
// (tests/support/op_server.mjs) accepts what the real SDK sends and refuses the rest.
//
// Usage: node op_client.mjs '<json>' with
//   {method, url, body?, token?, keyFile (PKCS#8 PEM), keyId, mode}
// mode: "sign"           createHeaders, as the SDK does
//       "unsigned"       no signature at all
//       "wrong-key"      createHeaders with another (fresh) Ed25519 key, same keyid
//       "no-authorization-component"
//                        signed by hand over @method and @target-uri only, although
//                        Authorization is sent
//       "other-target"   createHeaders over another URL than the one requested
//       "pretty-body"    createHeaders over a pretty-printed JSON body
// Prints one line: {"status": n, "body": <JSON or text>, "wwwAuthenticate": …}.
// https: start it with NODE_EXTRA_CA_CERTS naming the test CA.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { createHeaders } from '@interledger/http-signature-utils';

const o = JSON.parse(process.argv[2]);
const key = crypto.createPrivateKey(fs.readFileSync(o.keyFile));
const headers = { Accept: 'application/json' };
if (o.token) headers.Authorization = `GNAP ${o.token}`;
let body;
if (o.body !== undefined) body = o.mode === 'pretty-body' ? JSON.stringify(o.body, null, 2) : JSON.stringify(o.body);

async function sign(url, privateKey) {
  const h = await createHeaders({
    request: { method: o.method, url, headers: { ...headers }, body },
    privateKey,
    keyId: o.keyId,
  });
  return h;
}

let extra = {};
switch (o.mode) {
  case 'sign':
  case 'pretty-body':
    extra = await sign(o.url, key);
    break;
  case 'unsigned':
    if (body !== undefined) extra = { 'Content-Type': 'application/json' };
    break;
  case 'wrong-key':
    extra = await sign(o.url, crypto.generateKeyPairSync('ed25519').privateKey);
    break;
  case 'other-target':
    extra = await sign(o.url.replace(/\/([^/]*)$/, '/other-$1'), key);
    break;
  case 'no-authorization-component': {
    const created = Math.floor(Date.now() / 1000);
    const params = `("@method" "@target-uri");keyid="${o.keyId}";created=${created}`;
    const base = `"@method": ${o.method}\n"@target-uri": ${o.url}\n"@signature-params": ${params}`;
    const sig = crypto.sign(null, Buffer.from(base), key).toString('base64');
    extra = { 'Signature-Input': `sig1=${params}`, Signature: `sig1=:${sig}:` };
    break;
  }
  default:
    throw new Error(`unknown mode ${o.mode}`);
}

const r = await fetch(o.url, { method: o.method, headers: { ...headers, ...extra }, body });
const text = await r.text();
let parsed = text;
try {
  parsed = JSON.parse(text);
} catch (e) {
  // keep the text
}
process.stdout.write(`${JSON.stringify({ status: r.status, body: parsed, wwwAuthenticate: r.headers.get('www-authenticate') })}\n`);
