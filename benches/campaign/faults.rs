//! Campaign 3, payment flows during faults: for `fault_secs`, the chain RPC (an
//! RPC proxy in front of anvil, `tests/support/rpc_proxy.rs`) is down
//! `rpc_flap_secs`, then up as long, and so on, while the SQLite store's disk is
//! free `disk_free_secs`, then full `disk_full_secs`, and so on. The store lives
//! on a tmpfs of `tmpfs_mib` mounted for the campaign; "full" is a file written
//! until `ENOSPC`, "drained" is that file deleted. Where tmpfs cannot be mounted
//! (not root), another connection holds SQLite's write lock instead, so
//! tollgate's writes fail with `SQLITE_BUSY` after its busy timeout.
//!
//! `fault_flows` flows start spread over the first 80 % of the faults; once the
//! faults stop, every flow must complete. Then tollgate is restarted on the store,
//! every receipt is replayed again, and the store is counted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::payflow::{run_flows, settle_up, start_payer, Accounting, FlowRecord, FlowStats, Flows};
use super::support::rpc_proxy::RpcProxy;
use super::support::TempDir;
use super::{
    broke_text, log, ms, panics_in, proc_kib, secs, start_tollgate, stop_tollgate, thousands, Row,
    Settings, StoreFaultKind, World,
};

/// The prefix of the tmpfs mount points (with the owner's pid after it).
const MOUNT_PREFIX: &str = "tollgate-campaign-store-";

// ---------------------------------------------------------------- tmpfs

/// A tmpfs mounted for the store; unmounted (lazily if still busy) and removed
/// on drop.
pub struct Tmpfs {
    dir: PathBuf,
    fill: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB under the temporary directory, after unmounting
    /// those left by runs whose process is gone (a SIGKILLed run cannot clean up).
    pub fn mount(mib: u64) -> Result<Tmpfs, String> {
        unmount_stale();
        let mut rnd = [0u8; 4];
        getrandom::getrandom(&mut rnd).expect("getrandom");
        let dir = std::env::temp_dir().join(format!(
            "{MOUNT_PREFIX}{}-{}",
            std::process::id(),
            hex::encode(rnd)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Ok(Tmpfs {
                fill: dir.join("fill"),
                dir,
            }),
            Ok(o) => {
                let _ = std::fs::remove_dir(&dir);
                Err(format!(
                    "mount -t tmpfs failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(format!("cannot run mount: {e}"))
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the fill file until the filesystem is full; the bytes written.
    pub fn fill(&self) -> u64 {
        let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.fill)
        else {
            return 0;
        };
        let mut total = 0u64;
        for size in [1 << 20, 4096, 512] {
            let block = vec![0u8; size];
            while f.write_all(&block).is_ok() {
                total += size as u64;
            }
        }
        total
    }

    /// Deletes the fill file.
    pub fn drain(&self) {
        let _ = std::fs::remove_file(&self.fill);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        self.drain();
        unmount(&self.dir);
    }
}

fn unmount(dir: &Path) {
    let ok = Command::new("umount")
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        // Still busy (a process holds a file there): detach now, freed when it exits.
        let _ = Command::new("umount").arg("-l").arg(dir).status();
    }
    let _ = std::fs::remove_dir(dir);
}

/// Unmounts the campaign tmpfs mounts whose owner process no longer exists.
fn unmount_stale() {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    for line in mounts.lines() {
        let Some(point) = line.split_whitespace().nth(1) else {
            continue;
        };
        let Some(rest) = point
            .rsplit('/')
            .next()
            .and_then(|n| n.strip_prefix(MOUNT_PREFIX))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next() else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            log(&format!("unmounting {point}, left by a run that is gone"));
            unmount(Path::new(point));
        }
    }
}

// ---------------------------------------------------------------- the write lock

/// Another connection's write lock on the store, held on a thread of its own.
pub struct WriteLock {
    db: PathBuf,
    held: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl WriteLock {
    pub fn new(db: PathBuf) -> WriteLock {
        WriteLock { db, held: None }
    }

    /// Takes the lock (`BEGIN IMMEDIATE`), waiting for a writer in progress.
    pub fn take(&mut self) {
        if self.held.is_some() {
            return;
        }
        let db = self.db.clone();
        let (taken_tx, taken_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let c = rusqlite::Connection::open(&db).expect("open the store");
            c.busy_timeout(Duration::from_secs(30))
                .expect("busy timeout");
            c.execute_batch("BEGIN IMMEDIATE")
                .expect("take the write lock");
            let _ = taken_tx.send(());
            let _ = release_rx.recv();
            let _ = c.execute_batch("ROLLBACK");
        });
        taken_rx.recv().expect("write lock taken");
        self.held = Some((release_tx, t));
    }

    pub fn release(&mut self) {
        if let Some((tx, t)) = self.held.take() {
            let _ = tx.send(());
            let _ = t.join();
        }
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        self.release();
    }
}

/// How the store's writes are made to fail.
pub enum StoreFault {
    Tmpfs(Tmpfs),
    Lock(WriteLock),
}

impl StoreFault {
    /// Starts the fault; what it did, for the log.
    async fn begin(&mut self) -> u64 {
        match self {
            StoreFault::Tmpfs(t) => t.fill(),
            StoreFault::Lock(l) => {
                tokio::task::block_in_place(|| l.take());
                0
            }
        }
    }

    fn end(&mut self) {
        match self {
            StoreFault::Tmpfs(t) => t.drain(),
            StoreFault::Lock(l) => l.release(),
        }
    }
}

// ---------------------------------------------------------------- the campaign

/// What campaign 3 saw.
pub struct FaultResult {
    pub flows: Arc<Flows>,
    pub records: Vec<FlowRecord>,
    pub accounting: Accounting,
    /// How the store's writes were made to fail (and why, for the fallback).
    pub store_fault: String,
    pub fault_secs: f64,
    pub rpc_flap_secs: f64,
    pub disk_full_secs: f64,
    pub disk_free_secs: f64,
    pub rpc_outages: u64,
    pub disk_fills: u64,
    pub fill_bytes: u64,
    /// Faults stopped → the last flow completed (0 when all finished before).
    pub settle_secs: f64,
    /// Receipts that replayed after the restart at the end.
    pub replays_after_restart: u64,
    pub peak_kib: u64,
    pub panics: Vec<String>,
    /// Chain-watcher ticks that failed on the store, and on the RPC (tollgate's log).
    pub ticks_failed_store: u64,
    pub ticks_failed_rpc: u64,
}

pub async fn run(s: &Settings, world: &World) -> FaultResult {
    log(&format!(
        "3. faults: {} payment flows over {} s, RPC down/up every {} s, disk full {} s / free {} s",
        s.fault_flows, s.fault_secs, s.rpc_flap_secs, s.disk_full_secs, s.disk_free_secs
    ));
    let dir = TempDir::new("campaign-faults");
    let (tmpfs, store_fault) = match s.store_fault {
        StoreFaultKind::Lock => (
            None,
            "write lock held by another connection (chosen)".to_string(),
        ),
        kind => match Tmpfs::mount(s.tmpfs_mib) {
            Ok(t) => {
                let what = format!("tmpfs of {} MiB filled to ENOSPC", s.tmpfs_mib);
                (Some(t), what)
            }
            Err(why) if kind == StoreFaultKind::Auto => {
                log(&format!(
                    "   cannot mount a tmpfs ({why}): the store's writes fail by another connection holding SQLite's write lock instead"
                ));
                (
                    None,
                    format!("write lock held by another connection (tmpfs: {why})"),
                )
            }
            Err(why) => panic!("CAMPAIGN_STORE_FAULT=tmpfs: {why}"),
        },
    };
    let db = match &tmpfs {
        Some(t) => t.dir().join("tollgate.db"),
        None => dir.path().join("tollgate.db"),
    };
    let proxy = RpcProxy::start(world.anvil.rpc_url());
    let config = world.config(s, &proxy.url(), &format!("sqlite://{}", db.display()), "");
    let mut tg = start_tollgate(dir.path(), &config).await;
    let mut fault = match tmpfs {
        Some(t) => StoreFault::Tmpfs(t),
        None => StoreFault::Lock(WriteLock::new(db.clone())),
    };
    let (flows, miner_stop, miner) = start_payer(world, s, tg.addr);
    let start = Instant::now();
    let faults_end = start + secs(s.fault_secs);
    let deadline = faults_end + secs(s.settle_secs);

    // The RPC flaps.
    let flap = secs(s.rpc_flap_secs);
    let proxy = Arc::new(proxy);
    let flapper = {
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let mut outages = 0u64;
            loop {
                tokio::time::sleep_until((Instant::now() + flap).min(faults_end).into()).await;
                if Instant::now() >= faults_end {
                    break;
                }
                proxy.fail_all(true);
                outages += 1;
                tokio::time::sleep_until((Instant::now() + flap).min(faults_end).into()).await;
                proxy.fail_all(false);
            }
            proxy.fail_all(false);
            outages
        })
    };
    // The disk fills and drains.
    let (full, free) = (secs(s.disk_full_secs), secs(s.disk_free_secs));
    let filler = tokio::spawn(async move {
        let (mut fills, mut bytes) = (0u64, 0u64);
        loop {
            tokio::time::sleep_until((Instant::now() + free).min(faults_end).into()).await;
            if Instant::now() >= faults_end {
                break;
            }
            bytes += fault.begin().await;
            fills += 1;
            tokio::time::sleep_until((Instant::now() + full).min(faults_end).into()).await;
            fault.end();
        }
        fault.end();
        (fault, fills, bytes)
    });
    let records = run_flows(
        &flows,
        s.fault_flows,
        "faults",
        secs(s.fault_secs * 0.8),
        deadline,
    )
    .await;
    let done = Instant::now();
    let rpc_outages = flapper.await.expect("flapper");
    let (fault, disk_fills, fill_bytes) = filler.await.expect("filler");
    let _ = miner_stop.send(true);
    miner.await.expect("miner");
    let settle_secs = done.saturating_duration_since(faults_end).as_secs_f64();
    log(&format!(
        "   flows done {:.1} s after the faults stopped; {}",
        settle_secs,
        summary(&flows.stats)
    ));
    // A restart on the same store: every receipt replays again.
    let peak = proc_kib(tg.child.id(), "VmHWM");
    stop_tollgate(tg).await;
    tg = start_tollgate(dir.path(), &config).await;
    let (replays, accounting, peak_after) = settle_up(&flows, &records, tg, &db).await;
    let peak = peak.max(peak_after);
    drop(fault); // unmounts the tmpfs, now that tollgate has stopped
    super::keep_logs(dir.path(), "faults");
    let (ticks_failed_store, ticks_failed_rpc) = super::watcher_failures(dir.path());
    FaultResult {
        ticks_failed_store,
        ticks_failed_rpc,
        flows,
        records,
        accounting,
        store_fault,
        fault_secs: s.fault_secs,
        rpc_flap_secs: s.rpc_flap_secs,
        disk_full_secs: s.disk_full_secs,
        disk_free_secs: s.disk_free_secs,
        rpc_outages,
        disk_fills,
        fill_bytes,
        settle_secs,
        replays_after_restart: replays,
        peak_kib: peak,
        panics: panics_in(dir.path()),
    }
}

/// The counters in one line, for the log.
pub fn summary(st: &FlowStats) -> String {
    let g = FlowStats::get;
    let samples = st.samples.lock().unwrap();
    let mut out = format!(
        "{} requests, {} socket errors, {} hangs, 503s: {} ({} without Retry-After), other 5xx {}, unexpected {}, revisits {} (confirming {}, same {}, fresh {}), orphaned claims {}",
        g(&st.requests),
        g(&st.conn_errors),
        g(&st.timeouts),
        st.s503_by_step(),
        g(&st.s503_without_retry_after),
        g(&st.s5xx_other),
        g(&st.unexpected),
        g(&st.revisits),
        g(&st.revisit_confirming),
        g(&st.revisit_same),
        g(&st.revisit_fresh),
        g(&st.claims_orphaned),
    );
    for l in samples.iter() {
        out.push_str("\n     ");
        out.push_str(l);
    }
    out
}

/// The "broke" cell of a payment campaign and its count.
pub fn payment_broke(
    st: &FlowStats,
    a: &Accounting,
    replays_after_restart: u64,
    panics: usize,
    kills: bool,
) -> (String, u64) {
    broke_text(&payment_breakage(
        st,
        a,
        replays_after_restart,
        panics,
        kills,
    ))
}

/// What broke in a payment campaign; `kills` allows socket errors and orphaned
/// claims (a killed tollgate cannot answer).
pub fn payment_breakage(
    st: &FlowStats,
    a: &Accounting,
    replays_after_restart: u64,
    panics: usize,
    kills: bool,
) -> Vec<(u64, String)> {
    let g = FlowStats::get;
    let mut v = vec![
        (a.lost.len() as u64, "paid payments lost".to_string()),
        (a.double.len() as u64, "credited twice".into()),
        (a.strays.len() as u64, "payments paid by nobody".into()),
        ((a.flows - a.completed) as u64, "flows not completed".into()),
        (g(&st.revisit_fresh), "fresh contracts on a revisit".into()),
        (
            g(&st.revisit_unlocked),
            "revisits unlocked without a receipt".into(),
        ),
        (g(&st.s5xx_other), "5xx other than 503".into()),
        (
            g(&st.s503_without_retry_after),
            "503s without Retry-After".into(),
        ),
        (
            g(&st.confirming_without_retry_after),
            "`payment_confirming` without Retry-After".into(),
        ),
        (g(&st.overcredited), "status over-credited".into()),
        (g(&st.bad_state), "expired/underpaid states".into()),
        (g(&st.replay_refused), "paid receipts refused".into()),
        (g(&st.timeouts), "requests hung (no answer in 30 s)".into()),
        (g(&st.unexpected), "unexpected answers".into()),
        (
            (a.completed as u64).saturating_sub(replays_after_restart),
            "receipts not replaying after the restart".into(),
        ),
        (panics as u64, "panics".into()),
    ];
    if !kills {
        v.push((g(&st.conn_errors), "connections refused or reset".into()));
        v.push((
            g(&st.claims_orphaned),
            "claims answered 409 to their own claimer".into(),
        ));
    }
    v
}

/// When the last flow finished, against when `what` stopped.
pub fn settled(secs: f64, what: &str) -> String {
    if secs > 0.0 {
        format!("the last {secs:.1} s after {what} stopped")
    } else {
        format!("all before {what} stopped")
    }
}

/// p50 and max of the completed flows' durations.
pub fn flow_times(records: &[FlowRecord]) -> String {
    let t: Vec<Duration> = records
        .iter()
        .filter(|r| r.completed)
        .map(|r| r.took)
        .collect();
    format!(
        "flow time p50 {} / max {}",
        ms(super::probe::quantile_ms(&t, 0.5)),
        ms(super::probe::quantile_ms(&t, 1.0))
    )
}

impl FaultResult {
    pub fn row(&self) -> Row {
        let st = &self.flows.stats;
        let g = FlowStats::get;
        let a = &self.accounting;
        let (broke, broken) =
            payment_broke(st, a, self.replays_after_restart, self.panics.len(), false);
        Row {
            campaign: "3. faults during payments".into(),
            thrown: format!(
                "{} payment flows (402 → claim → transfer → paid → receipt → replay) started over {:.0} s while the chain RPC was down {} s / up {} s ({} outages) and the store's disk was full {} s / free {} s ({} fills; {})",
                a.flows,
                self.fault_secs * 0.8,
                self.rpc_flap_secs,
                self.rpc_flap_secs,
                self.rpc_outages,
                self.disk_full_secs,
                self.disk_free_secs,
                self.disk_fills,
                self.store_fault,
            ),
            held: format!(
                "fail closed: {} answers 503 + Retry-After ({}); {} revisits of unpaid fulfillment URLs: {} `payment_confirming` + Retry-After, {} the same contract, {} fresh; {} of {} flows completed ({}); {} of {} receipts replay after a restart; store: {} transfers sent, {} recorded, {} paid",
                thousands(st.s503_total()),
                st.s503_by_step(),
                thousands(g(&st.revisits)),
                thousands(g(&st.revisit_confirming)),
                thousands(g(&st.revisit_same)),
                thousands(g(&st.revisit_fresh)),
                a.completed,
                a.flows,
                settled(self.settle_secs, "the faults"),
                self.replays_after_restart,
                a.completed,
                a.transfers_sent,
                a.transfers_recorded,
                a.paid_in_store,
            ),
            broke,
            broken,
            key: format!(
                "{}; watcher ticks failed: {} on the RPC, {} on the store; {} requests; tollgate peak RSS {} MiB",
                flow_times(&self.records),
                self.ticks_failed_rpc,
                self.ticks_failed_store,
                thousands(g(&st.requests)),
                self.peak_kib / 1024
            ),
        }
    }
}
