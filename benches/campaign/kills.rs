//! Campaign 4, `kill -9` across payment flows: for `kill_secs`, tollgate gets
//! SIGKILL every `kill_every_ms` (±50 %) and is started again at once on the same
//! SQLite store (a new port: the flows follow it), while `kill_flows` flows start
//! spread over the first 80 % of that time. Kills land anywhere: mid-claim,
//! mid-scan, between a commit and its answer. Once the killing stops every flow
//! must complete; then one more kill and restart, every receipt replayed again,
//! and the store counted as in campaign 3.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::faults::{flow_times, payment_broke, summary};
use super::payflow::{run_flows, settle_up, start_payer, Accounting, FlowRecord, FlowStats, Flows};
use super::support::{TempDir, Tollgate, Xorshift};
use super::{
    jitter, log, ms, panics_in, proc_kib, secs, start_tollgate, thousands, Row, Settings, World,
};

/// What campaign 4 saw.
pub struct KillResult {
    pub flows: Arc<Flows>,
    pub records: Vec<FlowRecord>,
    pub accounting: Accounting,
    pub kill_secs: f64,
    pub kill_every_ms: u64,
    pub kills: u64,
    /// SIGKILL → the new tollgate's `ready` line.
    pub restarts: Vec<Duration>,
    pub settle_secs: f64,
    pub replays_after_restart: u64,
    pub peak_kib: u64,
    pub panics: Vec<String>,
}

/// `kill -9`, then a start on the same directory; how long that took.
async fn kill_and_restart(
    mut tg: Tollgate,
    dir: &std::path::Path,
    config: &str,
) -> (Tollgate, Duration) {
    let t0 = Instant::now();
    tokio::task::spawn_blocking(move || tg.kill9())
        .await
        .expect("kill -9");
    let tg = start_tollgate(dir, config).await;
    (tg, t0.elapsed())
}

pub async fn run(s: &Settings, world: &World) -> KillResult {
    log(&format!(
        "4. kills: {} payment flows over {} s, kill -9 every {} ms ±50 %",
        s.kill_flows, s.kill_secs, s.kill_every_ms
    ));
    let dir = Arc::new(TempDir::new("campaign-kills"));
    let config = world.config(s, world.anvil.rpc_url(), "sqlite://tollgate.db", "");
    let tg = start_tollgate(dir.path(), &config).await;
    let (flows, miner_stop, miner) = start_payer(world, s, tg.addr);
    let start = Instant::now();
    let kills_end = start + secs(s.kill_secs);
    let deadline = kills_end + secs(s.settle_secs);
    let killer = {
        let (dir, config, flows) = (dir.clone(), config.clone(), flows.clone());
        let every = Duration::from_millis(s.kill_every_ms);
        tokio::spawn(async move {
            let mut rng = Xorshift(0x6b11_1e55_0f70_1100);
            let mut tg = tg;
            let mut restarts = Vec::new();
            let mut peak = 0;
            loop {
                let at = Instant::now() + jitter(&mut rng, every);
                if at >= kills_end {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                peak = peak.max(proc_kib(tg.child.id(), "VmHWM"));
                let (new, took) = kill_and_restart(tg, dir.path(), &config).await;
                tg = new;
                flows.set_base(format!("http://{}", tg.addr));
                restarts.push(took);
            }
            (tg, restarts, peak)
        })
    };
    let records = run_flows(
        &flows,
        s.kill_flows,
        "kills",
        secs(s.kill_secs * 0.8),
        deadline,
    )
    .await;
    let done = Instant::now();
    let (tg, restarts, peak) = killer.await.expect("killer");
    let _ = miner_stop.send(true);
    miner.await.expect("miner");
    let settle_secs = done.saturating_duration_since(kills_end).as_secs_f64();
    log(&format!(
        "   {} kills; flows done {:.1} s after the last; {}",
        restarts.len(),
        settle_secs,
        summary(&flows.stats)
    ));
    // One more kill: every receipt replays on the restarted tollgate.
    let peak = peak.max(proc_kib(tg.child.id(), "VmHWM"));
    let (tg, _) = kill_and_restart(tg, dir.path(), &config).await;
    let (replays, accounting, peak_after) =
        settle_up(&flows, &records, tg, &dir.path().join("tollgate.db")).await;
    let peak = peak.max(peak_after);
    super::keep_logs(dir.path(), "kills");
    KillResult {
        flows,
        records,
        accounting,
        kill_secs: s.kill_secs,
        kill_every_ms: s.kill_every_ms,
        kills: restarts.len() as u64 + 1,
        restarts,
        settle_secs,
        replays_after_restart: replays,
        peak_kib: peak,
        panics: panics_in(dir.path()),
    }
}

impl KillResult {
    pub fn row(&self) -> Row {
        let st = &self.flows.stats;
        let g = FlowStats::get;
        let a = &self.accounting;
        let (broke, broken) =
            payment_broke(st, a, self.replays_after_restart, self.panics.len(), true);
        Row {
            campaign: "4. kill -9 during payments".into(),
            thrown: format!(
                "{} payment flows started over {:.0} s; tollgate killed with SIGKILL {} times (every {} ms ±50 %, the last after the flows) and restarted on the same SQLite store each time; {} requests refused or reset by the kills",
                a.flows,
                self.kill_secs * 0.8,
                self.kills,
                self.kill_every_ms,
                thousands(g(&st.conn_errors)),
            ),
            held: format!(
                "{} of {} flows completed ({}); {} claims whose answer a kill took began again with a fresh contract (nothing paid; {} such claims left unpaid in the store); {} revisits of unpaid fulfillment URLs: {} `payment_confirming`, {} the same contract, {} fresh; {} of {} receipts replay after the last kill; store: {} transfers sent, {} recorded, {} paid",
                a.completed,
                a.flows,
                super::faults::settled(self.settle_secs, "the killing"),
                g(&st.claims_orphaned),
                a.unpaid_claims,
                thousands(g(&st.revisits)),
                thousands(g(&st.revisit_confirming)),
                thousands(g(&st.revisit_same)),
                thousands(g(&st.revisit_fresh)),
                self.replays_after_restart,
                a.completed,
                a.transfers_sent,
                a.transfers_recorded,
                a.paid_in_store,
            ),
            broke,
            broken,
            key: format!(
                "{}; SIGKILL → ready again p50 {} / max {}; 503s: {}; tollgate peak RSS {} MiB",
                flow_times(&self.records),
                ms(super::probe::quantile_ms(&self.restarts, 0.5)),
                ms(super::probe::quantile_ms(&self.restarts, 1.0)),
                st.s503_by_step(),
                self.peak_kib / 1024,
            ),
        }
    }
}
