// Runs the 0xbtcpay seed's browser polling JavaScript VERBATIM (only the gateway
// URL and the payment id are filled in) in Debian's headless Chromium, on a page of
// another origin than the gateway, so CORS is exercised for real.
//
// usage: node seed_poll.mjs GATEWAY_BASE PAYMENT_ID
// stdout: one `MESSAGE <text>` line per change of the page's message; exits 0
// after "Payment complete!", 1 with `FAIL <reason>` on error or after 90 s.
import http from 'node:http';
import { chromium } from 'playwright-core';

const [base, paymentId] = process.argv.slice(2);
const out = (s) => process.stdout.write(s + '\n');
const fail = (s) => { out(`FAIL ${s}`); process.exit(1); };
if (!base || !paymentId) fail('usage: seed_poll.mjs GATEWAY_BASE PAYMENT_ID');

// The seed's code, character for character, with its placeholders substituted.
const seed = `function poll() {
  var xhr = new XMLHttpRequest();
  xhr.onreadystatechange = function() {
    if (this.readyState == 4 && this.status == 200) {
      var data = JSON.parse(this.responseText);
      if (data.paid_at == null && data.seen_at == null) {
        message.innerText = \`Please send \${data.amount} 0xBTC to \${data.address}.\`;
      } else {
        if (data.seen_at != null) {
          message.innerText = "Payment detected! Please wait...";
        }
        if (data.paid_at != null) {
          clearInterval(timerId);
          message.innerText = "Payment complete!";
        }
      }
    }
  };
  xhr.open("GET", \`https://xxx.yyy:8888/\${payment_id}/status.json\`, true);
  xhr.send();
}
poll();
var timerId = setInterval(poll, 1000);`.replace('https://xxx.yyy:8888', base);

const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const timer = setTimeout(() => fail('no "Payment complete!" within 90 s'), 90_000);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => fail(`page error: ${e.message}`));
  // The shop's checkout page, from a server of its own on 127.0.0.1:0: another
  // origin than the gateway's, so the XHR is cross-origin (CORS for real).
  const html = `<!doctype html><html><body><p id="message"></p>
<script>var payment_id = ${JSON.stringify(paymentId)};</script>
<script>${seed}</script></body></html>`;
  const shop = http.createServer((req, res) => { res.writeHead(200, { 'Content-Type': 'text/html' }); res.end(html); });
  await new Promise((resolve) => shop.listen(0, '127.0.0.1', resolve));
  page.on('close', () => shop.close());
  await page.goto(`http://127.0.0.1:${shop.address().port}/checkout`);
  let last = '';
  for (;;) {
    const handle = await page.waitForFunction(
      (prev) => { const t = document.getElementById('message').innerText; return t && t !== prev ? t : false; },
      last, { timeout: 85_000, polling: 50 });
    last = await handle.jsonValue();
    out(`MESSAGE ${last}`);
    if (last === 'Payment complete!') break;
  }
} catch (e) {
  fail(e.message.split('\n')[0]);
} finally {
  clearTimeout(timer);
  await browser.close();
}
process.exit(0);
