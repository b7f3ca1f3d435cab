//! The CI smoke of the load and fault campaigns (`benches/campaigns.rs`): the same
//! campaign code (`benches/campaign/`) at small scale on the debug binary — 200
//! kept-alive connections, 50 slowloris connections with oversized heads and
//! bodies, 5 payment flows while the RPC flaps and the store's disk fills up, 10
//! flows across `kill -9`s, a 2 s claim flood beside receipt replays — asserting what must hold. Latency ratios are printed,
//! not asserted (a debug build on a shared machine says little about them).
//!
//! As root the store of campaign 3 lives on a tmpfs this test mounts and unmounts
//! (also on a panic); elsewhere mounting fails and the store's writes are made to
//! fail by another connection holding SQLite's write lock, which the log says.

#[path = "../benches/campaign/mod.rs"]
mod campaign;

use campaign::payflow::FlowStats;

fn assert_payments(
    name: &str,
    st: &FlowStats,
    a: &campaign::payflow::Accounting,
    replays: u64,
    kills: bool,
) {
    let g = FlowStats::get;
    let summary = campaign::faults::summary(st);
    assert!(
        a.lost.is_empty(),
        "{name}: paid payments lost: {:?}",
        a.lost
    );
    assert!(
        a.double.is_empty(),
        "{name}: credited twice: {:?}",
        a.double
    );
    assert!(a.strays.is_empty(), "{name}: {:?}", a.strays);
    assert_eq!(
        a.completed, a.flows,
        "{name}: flows not completed; {summary}"
    );
    assert_eq!(a.transfers_sent, a.flows, "{name}");
    assert_eq!(a.transfers_recorded, a.flows as u64, "{name}");
    assert_eq!(a.paid_in_store, a.flows as u64, "{name}");
    assert_eq!(
        replays, a.flows as u64,
        "{name}: receipts after the restart"
    );
    assert_eq!(
        g(&st.revisit_fresh),
        0,
        "{name}: fresh contract on a revisit"
    );
    assert_eq!(g(&st.revisit_unlocked), 0, "{name}");
    assert_eq!(g(&st.s5xx_other), 0, "{name}: {summary}");
    assert_eq!(g(&st.s503_without_retry_after), 0, "{name}: {summary}");
    assert_eq!(g(&st.confirming_without_retry_after), 0, "{name}");
    assert_eq!(g(&st.overcredited), 0, "{name}");
    assert_eq!(g(&st.bad_state), 0, "{name}");
    assert_eq!(g(&st.replay_refused), 0, "{name}");
    assert_eq!(g(&st.timeouts), 0, "{name}: {summary}");
    assert_eq!(g(&st.unexpected), 0, "{name}: {summary}");
    if !kills {
        assert_eq!(g(&st.conn_errors), 0, "{name}: {summary}");
        assert_eq!(g(&st.claims_orphaned), 0, "{name}: {summary}");
    }
}

// Rules out, at small scale: a kept-alive connection not served or dropped, a slow
// or oversized request not closed by the limits, and — under RPC outages, a full
// disk and kill -9 — a paid payment lost or credited twice, a fresh contract to a
// payer whose payment is confirming, a 5xx other than a 503 with Retry-After, a
// flow that does not complete once the faults stop, a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_smoke_hold_their_accounting() {
    let report = campaign::run_all(&campaign::Settings::smoke()).await;
    println!("{}", report.table());

    let f = report.flood.as_ref().unwrap();
    assert_eq!(f.served, f.total(), "flood: every connection served");
    assert_eq!(f.dropped, 0, "flood: held connections dropped");
    assert_eq!(f.requests_bad_status, 0, "flood");
    assert_eq!(f.server_errors, 0, "flood");
    assert!(f.panics.is_empty(), "{:?}", f.panics);

    let s = report.slowloris.as_ref().unwrap();
    assert!(s.slow_opened >= s.slowloris, "slowloris: {s:?}");
    assert_eq!(s.slow_outlived, 0, "slowloris: slow heads left open");
    assert_eq!(s.slow_answered, 0, "slowloris: incomplete heads answered");
    assert_eq!(s.slow_closed, s.slow_opened, "slowloris");
    assert!(s.metric_slow_head >= s.slow_closed, "slowloris: metric");
    assert!(s.heads_sent > 0 && s.bodies_sent > 0);
    assert_eq!(s.heads_431, s.heads_sent, "oversized heads → 431");
    assert_eq!(s.metric_large_head, s.heads_sent, "large_head metric");
    assert_eq!(s.bodies_413, s.bodies_sent, "oversized bodies → 413");
    assert_eq!(s.server_errors, 0);
    assert!(s.panics.is_empty(), "{:?}", s.panics);

    let c = report.faults.as_ref().unwrap();
    assert_payments(
        "faults",
        &c.flows.stats,
        &c.accounting,
        c.replays_after_restart,
        false,
    );
    assert!(c.rpc_outages > 0 && c.disk_fills > 0, "the faults happened");
    assert!(c.panics.is_empty(), "{:?}", c.panics);

    let k = report.kills.as_ref().unwrap();
    assert_payments(
        "kills",
        &k.flows.stats,
        &k.accounting,
        k.replays_after_restart,
        true,
    );
    assert!(k.kills >= 3, "kills: {}", k.kills);
    assert!(k.panics.is_empty(), "{:?}", k.panics);

    let c = report.claims.as_ref().unwrap();
    assert_eq!(c.paid, 3, "claims: the payments to replay were made");
    assert!(c.claims > 0, "claims: the flood claimed");
    assert_eq!(c.claims_bad, 0, "claims: a claim answered other than 201");
    assert_eq!(c.claim_errors, 0, "claims");
    assert!(!c.unloaded.ok.is_empty() && !c.loaded.ok.is_empty());
    assert_eq!(
        c.unloaded.refused + c.loaded.refused,
        0,
        "claims: replay refused"
    );
    assert_eq!(c.unloaded.errors + c.loaded.errors, 0, "claims");
    assert!(c.payments_in_store >= c.claims + 3, "claims: rows");
    assert!(c.panics.is_empty(), "{:?}", c.panics);
}
