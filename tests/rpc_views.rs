//! Which RPC endpoint decides the chain, on real parts: the tollgate binary, anvil
//! from npm (a main chain A and a genuinely lagging node B: a fork of A frozen at
//! block N, same history up to N), real SQLite, and a fault-injecting JSON-RPC
//! proxy (`support::rpc_proxy`) in front of the nodes.
//!
//! Invariant 11: one tick reads head, hashes and logs from one up-to-date endpoint;
//! a lagging or truncating endpoint never decides a reorg or a scanned range, and
//! the watcher goes back to the first endpoint as soon as it is healthy.
//!
//! Positioning: a frozen fork can only answer `eth_getLogs` for a range that starts
//! at or below its own head (past it, anvil answers an error), so the tests stop
//! tollgate while A moves on and start it again on the same store: its checkpoint
//! is then below B's head and the first range it scans reaches past it, the one
//! position in which a lagging node's truncated answer can be taken for the chain.

mod support;

use std::path::Path;

use alloy::primitives::Address;
use serde_json::{json, Value};
use support::chain::{Anvil, ONE_TOKEN};
use support::origin::Origin;
use support::payer::Payer;
use support::rpc_proxy::RpcProxy;
use support::{eventually, funded_chain, PaymentsConfig, TempDir, Tollgate, TEST_KEY};

const CHAIN_ID: u64 = 31337;

/// tollgate's config with `rpc_urls` in this order (confirmations 1, 100 ms polls).
fn config(origin: &Origin, token: Address, rpc_urls: &[&str]) -> String {
    let (last, first) = rpc_urls.split_last().expect("at least one RPC URL");
    PaymentsConfig {
        listen: "127.0.0.1:0",
        public_url: "http://tollgate.test",
        origin: origin.addr,
        rpc: last,
        dead_rpcs: first,
        chain_id: CHAIN_ID,
        token,
        confirmations: 1,
        secrets_extra: "",
        rest: r#"
[payments]
expiry = "30m"
claim_rate = "1000/min"
[[route]]
path = "/movies/*"
price = "0.5"
"#,
    }
    .render()
}

fn start(dir: &Path, config: &str) -> Tollgate {
    Tollgate::start_in(dir, config, &[("TOLLGATE_TEST_KEY", TEST_KEY)])
}

/// Pays `claim` in full on `anvil` (from dev account 1); returns the block it was mined in.
async fn pay(anvil: &Anvil, token: Address, claim: &Value) -> u64 {
    let to: Address = claim["address"].as_str().unwrap().parse().unwrap();
    let tx = anvil.transfer(token, 1, to, ONE_TOKEN / 2).await;
    let r = anvil.wait_success(tx).await;
    support::chain::parse_u64(&r["blockNumber"])
}

/// Starts B: a fork of `a` frozen at its current head N, and checks that B is a
/// genuinely lagging node with A's history: same head N, same hash for every
/// block up to N, no block N+1. Returns (B, N).
async fn lagging_fork(a: &Anvil) -> (Anvil, u64) {
    let n = a.block_number().await;
    let b = Anvil::start_with_args(
        CHAIN_ID,
        &[
            "--fork-url",
            a.rpc_url(),
            "--fork-block-number",
            &n.to_string(),
        ],
    );
    assert_eq!(b.block_number().await, n);
    for i in 0..=n {
        assert_eq!(
            a.block(Some(i)).await["hash"],
            b.block(Some(i)).await["hash"],
            "block {i}: the fork does not share A's history"
        );
    }
    assert!(b.block(Some(n + 1)).await.is_null());
    (b, n)
}

// Rules out: one failed eth_getLogs handing the chain to a lagging node for good —
// its missing blocks taken for a reorg (reverting credited transfers), and the
// checkpoint stalled at its head while later payments stay `new` and expire.
#[tokio::test]
async fn lagging_node_is_never_authoritative() {
    let (a, token) = funded_chain(CHAIN_ID).await;
    let proxy_a = RpcProxy::start(a.rpc_url());
    let origin = Origin::start();
    let dir = TempDir::new("views-lag");
    let payer = Payer::new();

    let tg = start(dir.path(), &config(&origin, token, &[&proxy_a.url()]));
    let first = payer.claim(&tg, "/movies/first").await;
    let second = payer.claim(&tg, "/movies/second").await;
    pay(&a, token, &first).await;
    payer.wait_state(&tg, &first, "paid").await;
    // Stopped with its checkpoint at A's head; A moves on by one block, B freezes
    // there, A moves on by three more (more than the allowed lag).
    drop(tg);
    a.mine(1).await;
    let (b, n) = lagging_fork(&a).await;
    a.mine(3).await;

    // Back with B as the second endpoint, and proxy A refusing one eth_getLogs.
    proxy_a.fail_next_logs(1);
    let tg = start(
        dir.path(),
        &config(&origin, token, &[&proxy_a.url(), b.rpc_url()]),
    );
    eventually("proxy A to refuse an eth_getLogs", || async {
        match proxy_a.refused_logs() {
            1 => Ok(()),
            k => Err(format!("refused {k}")),
        }
    })
    .await;
    let paid_in = pay(&a, token, &second).await;
    assert!(
        paid_in > n,
        "the second payment is in a block B does not have"
    );

    // The second payment becomes paid; the first never leaves paid meanwhile.
    let regressions = std::sync::Mutex::new(Vec::new());
    eventually("the second payment to be paid", || async {
        let f = payer.status(&tg, &first).await;
        if f["state"] != "paid" {
            regressions.lock().unwrap().push(f.to_string());
        }
        let s = payer.status(&tg, &second).await;
        if s["state"] == "paid" {
            Ok(())
        } else {
            Err(format!("{s}\n{}", tg.stderr()))
        }
    })
    .await;
    let first_now = payer.status(&tg, &first).await;
    assert_eq!(first_now["state"], "paid", "{first_now}");
    assert_eq!(
        regressions.into_inner().unwrap(),
        Vec::<String>::new(),
        "the first payment moved back from paid"
    );
    let stderr = tg.stderr();
    assert!(
        !stderr.contains("chain reorganisation"),
        "a lagging node was taken for a reorg:\n{stderr}"
    );
    assert!(
        stderr.contains("RPC view abandoned") && stderr.contains(&proxy_a.url()),
        "the refused eth_getLogs abandoned proxy A's view:\n{stderr}"
    );
    assert_eq!(b.block_number().await, n, "B stayed behind throughout");
}

// Rules out: a checkpoint moved past blocks whose logs were never seen, when an
// endpoint's head is current but its eth_getLogs is served by a backend that lags
// (a load balancer) and silently truncates the range at its own head.
#[tokio::test]
async fn truncating_node_never_advances_the_checkpoint() {
    let (a, token) = funded_chain(CHAIN_ID).await;
    let balancer = RpcProxy::start(a.rpc_url());
    let origin = Origin::start();
    let dir = TempDir::new("views-trunc");
    let payer = Payer::new();
    let cfg = config(&origin, token, &[&balancer.url(), a.rpc_url()]);

    let tg = start(dir.path(), &cfg);
    let before = payer.claim(&tg, "/movies/before").await;
    let truncated = payer.claim(&tg, "/movies/truncated").await;
    pay(&a, token, &before).await;
    payer.wait_state(&tg, &before, "paid").await;
    drop(tg);
    // B lags one block behind the next range's end: the payment is in the block
    // B does not have. The balancer answers heads and block reads from A, and
    // sends every request that carries an eth_getLogs to B.
    a.mine(1).await;
    let (b, n) = lagging_fork(&a).await;
    let paid_in = pay(&a, token, &truncated).await;
    assert_eq!(paid_in, n + 1);
    balancer.route_logs_to(Some(b.rpc_url()));
    // B's answer for the range is truncated, not an error (what the old client
    // took for the whole range).
    let logs = b
        .rpc(
            "eth_getLogs",
            json!([{"address": token, "fromBlock": format!("{:#x}", n), "toBlock": format!("{:#x}", n + 1)}]),
        )
        .await;
    assert_eq!(logs, json!([]), "B truncates silently");

    let tg = start(dir.path(), &cfg);
    payer.wait_state(&tg, &truncated, "paid").await;
    assert_eq!(payer.status(&tg, &before).await["state"], "paid");
    assert!(
        balancer.served_logs() > 0,
        "the truncating endpoint was asked"
    );
    let stderr = tg.stderr();
    assert!(!stderr.contains("chain reorganisation"), "{stderr}");
    assert!(
        stderr.contains("its logs are truncated"),
        "the truncated range was refused, not skipped:\n{stderr}"
    );
}

// Rules out: a sticky preference for the endpoint that answered during an outage;
// the first endpoint serves the logs again as soon as it is healthy.
#[tokio::test]
async fn watcher_returns_to_the_first_endpoint_once_healthy() {
    let (a, token) = funded_chain(CHAIN_ID).await;
    let first = RpcProxy::start(a.rpc_url());
    let second = RpcProxy::start(a.rpc_url());
    let origin = Origin::start();
    let dir = TempDir::new("views-back");
    let payer = Payer::new();
    let tg = start(
        dir.path(),
        &config(&origin, token, &[&first.url(), &second.url()]),
    );
    let during = payer.claim(&tg, "/movies/during").await;
    let after = payer.claim(&tg, "/movies/after").await;

    // The first endpoint is down: payments move through the second.
    first.fail_all(true);
    pay(&a, token, &during).await;
    payer.wait_state(&tg, &during, "paid").await;
    assert!(second.served_logs() > 0);

    // It recovers: the next block's logs come from it again…
    first.fail_all(false);
    let served = first.served_logs();
    a.mine(1).await;
    eventually("the first endpoint to serve eth_getLogs again", || async {
        if first.served_logs() > served {
            Ok(())
        } else {
            Err(format!(
                "first served {} (refused {}), second served {}",
                first.served_logs(),
                first.refused_logs(),
                second.served_logs()
            ))
        }
    })
    .await;
    // …and from then on only from it.
    let second_served = second.served_logs();
    pay(&a, token, &after).await;
    payer.wait_state(&tg, &after, "paid").await;
    assert_eq!(
        second.served_logs(),
        second_served,
        "the second endpoint served logs while the first was healthy"
    );
}
