// Baseline for benches/load.sh: express + the x402-express middleware gating
// the same priced path as tollgate's bench config (GET /paid/*, price 0.5).
//
// Usage: node server.js [PORT]   (or PORT=... node server.js; 0 = ephemeral)
// Prints `listening 127.0.0.1:PORT` once bound. Listens on loopback only.
//
// Only unpaid requests are benchmarked. For those the middleware builds the
// payment requirements locally (EVM network: no facilitator round trip) and
// answers 402 with JSON. To prove that on every run, outbound fetch() is
// replaced by a stub that counts calls and fails; the count is served at
// GET /__bench/facilitator-calls (not gated) and load.sh reports it.
"use strict";

const express = require("express");
const { paymentMiddleware } = require("x402-express");

let facilitatorCalls = 0;
globalThis.fetch = async (input) => {
  facilitatorCalls += 1;
  throw new Error(`bench: unexpected outbound fetch to ${String(input)}`);
};

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
// A dummy receiving address; nothing is ever paid to it.
const payTo = process.env.X402_PAY_TO || "0x0000000000000000000000000000000000000001";
// A testnet the middleware knows (USDC asset metadata is bundled, no RPC).
const network = process.env.X402_NETWORK || "base-sepolia";

const app = express();
app.disable("x-powered-by");
app.disable("etag");

app.get("/__bench/facilitator-calls", (_req, res) => {
  res.json({ calls: facilitatorCalls });
});

app.use(
  paymentMiddleware(
    payTo,
    {
      "GET /paid/*": {
        price: "$0.5",
        network,
        config: { description: "Bench paid route" },
      },
    },
    // Never reached for unpaid requests; loopback discard port just in case.
    { url: "http://127.0.0.1:9" },
  ),
);

const body = "x".repeat(100);
app.get("*", (_req, res) => {
  res.type("text/plain").send(body);
});

const server = app.listen(port, "127.0.0.1", () => {
  const addr = server.address();
  console.log(`listening ${addr.address}:${addr.port}`);
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
