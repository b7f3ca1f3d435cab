//! Payment flows for the fault campaigns (3 and 4), as a program pays through
//! tollgate's HTTP API, and the accounting at the end:
//!
//! 402 JSON → `POST /_tollgate/pay` → ERC-20 transfer on anvil (once per flow,
//! never repeated) → status.json until `paid` → `POST …/receipt` → replay with
//! `Authorization: Tollgate <receipt>`.
//!
//! Every step retries while tollgate cannot answer: a refused or reset connection
//! (it is being killed) after 100 ms, a 503 after its `Retry-After` (at most
//! `retry_cap`). What each answer must be is checked on the way:
//!
//! * a 503 always carries `Retry-After`; no other 5xx ever;
//! * while the payment is unpaid, the fulfillment URL (`…?tollgate_contract=…`) is
//!   revisited at every status poll: the answer must be a 402 for the **same**
//!   contract (`payment_confirming` with `Retry-After` once the payment is seen), or
//!   a 503 — never a fresh contract, never the content;
//! * `received` never exceeds the amount; a paid payment's receipt replays.
//!
//! A claim answered 409 `contract_already_claimed` means the claim was stored but
//! its answer was lost (only a kill can do that): the flow starts again with a fresh
//! contract, as a payer would from the offer page (nothing was paid yet).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use serde_json::{json, Value};

use super::support::chain::Anvil;
use super::support::payer::PUBLIC_URL;
use super::{log, PRICE};

/// The step a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Challenge = 0,
    Claim = 1,
    Status = 2,
    Revisit = 3,
    Receipt = 4,
    Replay = 5,
}

pub const STEPS: [&str; 6] = ["402", "claim", "status", "revisit", "receipt", "replay"];

/// What the flows saw (atomics: the flows run concurrently).
#[derive(Default, Debug)]
pub struct FlowStats {
    pub requests: AtomicU64,
    /// Requests that failed on the socket (refused, reset: tollgate was down).
    pub conn_errors: AtomicU64,
    /// Requests with no answer within the client's timeout (a hang).
    pub timeouts: AtomicU64,
    /// 503 answers, by step.
    pub s503: [AtomicU64; 6],
    pub s503_without_retry_after: AtomicU64,
    /// 5xx answers other than 503.
    pub s5xx_other: AtomicU64,
    /// Answers a step does not expect (counted, retried).
    pub unexpected: AtomicU64,
    /// Claims answered 409 after their answer was lost (a kill): started again.
    pub claims_orphaned: AtomicU64,
    pub revisits: AtomicU64,
    /// Revisits answered `payment_confirming` with the same contract.
    pub revisit_confirming: AtomicU64,
    /// Revisits answered the same contract again (unpaid, or paid a moment before).
    pub revisit_same: AtomicU64,
    /// Revisits answered a fresh contract: an invitation to pay twice.
    pub revisit_fresh: AtomicU64,
    /// `payment_confirming` without `Retry-After`.
    pub confirming_without_retry_after: AtomicU64,
    /// Revisits without a receipt that got the content.
    pub revisit_unlocked: AtomicU64,
    /// status.json showing more received than the amount.
    pub overcredited: AtomicU64,
    /// status.json showing expired, underpaid or refunded.
    pub bad_state: AtomicU64,
    /// Replays with a paid payment's receipt that got a 402.
    pub replay_refused: AtomicU64,
    pub completed: AtomicU64,
    /// The first few unexpected answers, for the log.
    pub samples: Mutex<Vec<String>>,
}

impl FlowStats {
    fn note(&self, what: String) {
        let mut s = self.samples.lock().unwrap();
        if s.len() < 20 {
            s.push(what);
        }
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn s503_total(&self) -> u64 {
        self.s503.iter().map(Self::get).sum()
    }

    /// "claim 12, status 3" for the steps that saw 503s.
    pub fn s503_by_step(&self) -> String {
        let parts: Vec<String> = self
            .s503
            .iter()
            .zip(STEPS)
            .filter(|(n, _)| Self::get(n) > 0)
            .map(|(n, s)| format!("{s} {}", Self::get(n)))
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// One answer, read whole.
struct Answer {
    status: u16,
    retry_after: bool,
    contract_hash: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One flow's outcome.
#[derive(Debug, Clone, Default)]
pub struct FlowRecord {
    pub path: String,
    pub payment_id: String,
    pub claim_token: String,
    /// The transfer sent for it (empty: none was sent).
    pub tx_hash: String,
    pub receipt: String,
    pub completed: bool,
    /// Start → replayed (or given up).
    pub took: Duration,
}

/// The payer: tollgate's current address (it changes on a restart), the chain,
/// and the checks' counters.
pub struct Flows {
    pub http: reqwest::Client,
    pub base: RwLock<String>,
    pub anvil: Arc<Anvil>,
    pub token: Address,
    /// Transfers from the one payer account go one at a time (nonces).
    pay_lock: tokio::sync::Mutex<()>,
    pub stats: FlowStats,
    /// Longest wait for a `Retry-After`.
    pub retry_cap: Duration,
    /// Pause between two status polls.
    pub poll: Duration,
}

impl Flows {
    pub fn new(base: String, anvil: Arc<Anvil>, token: Address, poll: Duration) -> Flows {
        Flows {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            base: RwLock::new(base),
            anvil,
            token,
            pay_lock: tokio::sync::Mutex::new(()),
            stats: FlowStats::default(),
            retry_cap: Duration::from_secs(1),
            poll,
        }
    }

    pub fn set_base(&self, base: String) {
        *self.base.write().unwrap() = base;
    }

    fn base(&self) -> String {
        self.base.read().unwrap().clone()
    }

    /// A URL tollgate handed out (under `PUBLIC_URL`) on its current address.
    fn local(&self, public: &str) -> String {
        format!(
            "{}{}",
            self.base(),
            public.strip_prefix(PUBLIC_URL).unwrap_or(public)
        )
    }

    /// Sends until tollgate answers with something other than a 503 or a socket
    /// error; `None` past `deadline`.
    async fn send(
        &self,
        step: Step,
        deadline: Instant,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Option<Answer> {
        let st = &self.stats;
        loop {
            if Instant::now() > deadline {
                return None;
            }
            st.requests.fetch_add(1, Ordering::Relaxed);
            let base = self.base();
            let r = match build(&self.http, &base).send().await {
                Ok(r) => r,
                Err(e) => {
                    if e.is_timeout() {
                        st.timeouts.fetch_add(1, Ordering::Relaxed);
                        st.note(format!("{}: no answer in 30 s", STEPS[step as usize]));
                    } else {
                        st.conn_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let status = r.status().as_u16();
            let retry_after = r.headers().get("retry-after").map(|v| {
                v.to_str()
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .unwrap_or(1)
            });
            let contract_hash = r
                .headers()
                .get("x-taler-contract-hash")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = match r.bytes().await {
                Ok(b) => b.to_vec(),
                Err(e) => {
                    if e.is_timeout() {
                        st.timeouts.fetch_add(1, Ordering::Relaxed);
                    } else {
                        st.conn_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if status == 503 {
                st.s503[step as usize].fetch_add(1, Ordering::Relaxed);
                let wait = match retry_after {
                    Some(s) => Duration::from_secs(s).min(self.retry_cap),
                    None => {
                        st.s503_without_retry_after.fetch_add(1, Ordering::Relaxed);
                        st.note(format!(
                            "{}: 503 without Retry-After: {}",
                            STEPS[step as usize],
                            String::from_utf8_lossy(&body)
                        ));
                        Duration::from_millis(200)
                    }
                };
                tokio::time::sleep(wait).await;
                continue;
            }
            if status >= 500 {
                st.s5xx_other.fetch_add(1, Ordering::Relaxed);
                st.note(format!(
                    "{}: {status}: {}",
                    STEPS[step as usize],
                    String::from_utf8_lossy(&body)
                ));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            return Some(Answer {
                status,
                retry_after: retry_after.is_some(),
                contract_hash,
                body,
            });
        }
    }

    fn unexpected(&self, step: Step, a: &Answer) {
        self.stats.unexpected.fetch_add(1, Ordering::Relaxed);
        self.stats.note(format!(
            "{}: unexpected {}: {}",
            STEPS[step as usize],
            a.status,
            String::from_utf8_lossy(&a.body)
        ));
    }

    /// One whole flow for `path`; `completed` is false when `deadline` passed first.
    pub async fn flow(&self, path: &str, deadline: Instant) -> FlowRecord {
        let started = Instant::now();
        let mut rec = self.flow_steps(path, deadline).await;
        rec.took = started.elapsed();
        rec
    }

    async fn flow_steps(&self, path: &str, deadline: Instant) -> FlowRecord {
        let mut rec = FlowRecord {
            path: path.to_string(),
            ..Default::default()
        };
        let st = &self.stats;
        let pause = Duration::from_millis(200);
        // 1 + 2: a contract and its claim (again with a fresh contract when a
        // claim's answer was lost).
        let (claim, hash, fulfillment) = 'contract: loop {
            let Some(a) = self
                .send(Step::Challenge, deadline, |c, b| {
                    c.get(format!("{b}{path}"))
                        .header("Accept", "application/json")
                })
                .await
            else {
                return rec;
            };
            if a.status != 402 {
                self.unexpected(Step::Challenge, &a);
                tokio::time::sleep(pause).await;
                continue;
            }
            let v = a.json();
            let token = v["contract_token"].as_str().unwrap_or_default().to_string();
            let hash = v["contract_hash"].as_str().unwrap_or_default().to_string();
            let fulfillment = v["contract"]["fulfillment_url"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            loop {
                let Some(a) = self
                    .send(Step::Claim, deadline, |c, b| {
                        c.post(format!("{b}/_tollgate/pay"))
                            .json(&json!({ "contract": token }))
                    })
                    .await
                else {
                    return rec;
                };
                match a.status {
                    200 | 201 => break 'contract (a.json(), hash, fulfillment),
                    409 if a.json()["code"] == "contract_already_claimed" => {
                        st.claims_orphaned.fetch_add(1, Ordering::Relaxed);
                        continue 'contract;
                    }
                    _ => {
                        self.unexpected(Step::Claim, &a);
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        };
        rec.payment_id = claim["payment_id"].as_str().unwrap_or_default().into();
        rec.claim_token = claim["claim_token"].as_str().unwrap_or_default().into();
        let to: Address = claim["address"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("claim address");
        let amount: u128 = claim["amount_base_units"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("amount_base_units");
        assert_eq!(amount, PRICE, "claimed amount");
        // 3: pay, once.
        let tx = {
            let _one = self.pay_lock.lock().await;
            self.anvil.transfer(self.token, 1, to, amount).await
        };
        rec.tx_hash = format!("{tx:#x}");
        // 4: status until paid, revisiting the fulfillment URL meanwhile.
        let status_url = claim["status_url"].as_str().unwrap_or_default().to_string();
        loop {
            let Some(a) = self
                .send(Step::Status, deadline, |c, _| {
                    c.get(self.local(&status_url))
                })
                .await
            else {
                return rec;
            };
            if a.status != 200 {
                self.unexpected(Step::Status, &a);
                tokio::time::sleep(pause).await;
                continue;
            }
            let s = a.json();
            let received: u128 = s["received"]
                .as_str()
                .and_then(super::parse_units)
                .unwrap_or(0);
            if received > amount {
                st.overcredited.fetch_add(1, Ordering::Relaxed);
                st.note(format!("{}: over-credited: {s}", rec.payment_id));
            }
            match s["state"].as_str().unwrap_or_default() {
                "paid" | "paid_late" => break,
                "new" | "seen" | "confirming" => {
                    if !self.revisit(&fulfillment, &hash, deadline).await {
                        return rec;
                    }
                }
                other => {
                    st.bad_state.fetch_add(1, Ordering::Relaxed);
                    st.note(format!("{}: state {other}: {s}", rec.payment_id));
                }
            }
            tokio::time::sleep(self.poll).await;
        }
        // 5: the receipt.
        let receipt_url = claim["receipt_url"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        rec.receipt = loop {
            let Some(a) = self
                .send(Step::Receipt, deadline, |c, _| {
                    c.post(self.local(&receipt_url))
                        .json(&json!({ "claim_token": rec.claim_token }))
                })
                .await
            else {
                return rec;
            };
            match a.status {
                200 => break a.json()["receipt"].as_str().unwrap_or_default().to_string(),
                _ => {
                    self.unexpected(Step::Receipt, &a);
                    tokio::time::sleep(pause).await;
                }
            }
        };
        // 6: replay.
        if !self.replay(&rec, deadline).await {
            return rec;
        }
        rec.completed = true;
        st.completed.fetch_add(1, Ordering::Relaxed);
        rec
    }

    /// The fulfillment URL revisited without a receipt: the same contract, or a
    /// 503. False past the deadline.
    async fn revisit(&self, fulfillment: &str, hash: &str, deadline: Instant) -> bool {
        let st = &self.stats;
        st.revisits.fetch_add(1, Ordering::Relaxed);
        let Some(a) = self
            .send(Step::Revisit, deadline, |c, _| {
                c.get(self.local(fulfillment))
                    .header("Accept", "application/json")
            })
            .await
        else {
            return false;
        };
        match a.status {
            402 if a.contract_hash.as_deref() != Some(hash) => {
                st.revisit_fresh.fetch_add(1, Ordering::Relaxed);
                st.note(format!(
                    "revisit: a fresh contract {:?} instead of {hash}",
                    a.contract_hash
                ));
            }
            402 if a.json()["code"] == "payment_confirming" => {
                st.revisit_confirming.fetch_add(1, Ordering::Relaxed);
                if !a.retry_after {
                    st.confirming_without_retry_after
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            402 => {
                st.revisit_same.fetch_add(1, Ordering::Relaxed);
            }
            200 => {
                st.revisit_unlocked.fetch_add(1, Ordering::Relaxed);
                st.note(format!("revisit without a receipt unlocked {fulfillment}"));
            }
            _ => self.unexpected(Step::Revisit, &a),
        }
        true
    }

    /// Replays `rec`'s receipt until it opens the resource (a 402 is counted:
    /// a paid receipt must never be refused). False past the deadline.
    pub async fn replay(&self, rec: &FlowRecord, deadline: Instant) -> bool {
        loop {
            let Some(a) = self
                .send(Step::Replay, deadline, |c, b| {
                    c.get(format!("{b}{}", rec.path))
                        .header("Authorization", format!("Tollgate {}", rec.receipt))
                })
                .await
            else {
                return false;
            };
            match a.status {
                200 => return true,
                402 => {
                    self.stats.replay_refused.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .note(format!("replay of {} refused (402)", rec.payment_id));
                }
                _ => self.unexpected(Step::Replay, &a),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Runs `n` flows on `paths(i)`, starting one every `spread / n`; each must be done
/// by `deadline`.
pub async fn run_flows(
    flows: &Arc<Flows>,
    n: usize,
    prefix: &str,
    spread: Duration,
    deadline: Instant,
) -> Vec<FlowRecord> {
    let mut tasks = Vec::with_capacity(n);
    let step = spread.div_f64(n.max(1) as f64);
    for i in 0..n {
        let f = flows.clone();
        let path = format!("/movies/{prefix}-{i}");
        let start = step.mul_f64(i as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(start).await;
            f.flow(&path, deadline).await
        }));
    }
    let mut out = Vec::with_capacity(n);
    let mut done = 0;
    for t in tasks {
        let r = t.await.expect("flow task");
        done += 1;
        if done % 25 == 0 {
            log(&format!("   {done} of {n} flows finished"));
        }
        out.push(r);
    }
    out
}

/// The payer of a payment campaign, on tollgate at `addr`, and the miner that
/// brings confirmations (stop it through the sender).
pub fn start_payer(
    world: &super::World,
    s: &super::Settings,
    addr: std::net::SocketAddr,
) -> (
    Arc<Flows>,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let flows = Arc::new(Flows::new(
        format!("http://{addr}"),
        world.anvil.clone(),
        world.token,
        Duration::from_millis(s.poll_ms),
    ));
    let (stop, miner) = spawn_miner(world.anvil.clone(), Duration::from_millis(s.mine_every_ms));
    (flows, stop, miner)
}

/// Mines one block every `every` until the returned sender is dropped or set.
pub fn spawn_miner(
    anvil: Arc<Anvil>,
    every: Duration,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let h = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => anvil.mine(1).await,
                _ = super::until(&mut rx, |stop| *stop) => return,
            }
        }
    });
    (tx, h)
}

/// The end of a payment campaign, on `tg` just restarted on the store at `db`:
/// every completed flow's receipt replayed, tollgate stopped, the store counted.
/// Returns (receipts that replayed, the accounting, tollgate's peak RSS in KiB).
pub async fn settle_up(
    flows: &Flows,
    records: &[FlowRecord],
    tg: super::support::Tollgate,
    db: &Path,
) -> (u64, Accounting, u64) {
    flows.set_base(format!("http://{}", tg.addr));
    let mut replays = 0;
    for r in records.iter().filter(|r| r.completed) {
        if flows
            .replay(r, Instant::now() + Duration::from_secs(30))
            .await
        {
            replays += 1;
        }
    }
    let peak = super::proc_kib(tg.child.id(), "VmHWM");
    super::stop_tollgate(tg).await;
    let accounting = account(db, records);
    log(&format!("   accounting: {}", accounting.summary()));
    for l in accounting
        .lost
        .iter()
        .chain(&accounting.double)
        .chain(&accounting.strays)
    {
        log(&format!("   !! {l}"));
    }
    (replays, accounting, peak)
}

/// What the store says about the flows, read from the SQLite file after tollgate
/// stopped.
#[derive(Debug, Default, Clone)]
pub struct Accounting {
    pub flows: usize,
    pub completed: usize,
    /// Transfers the flows sent.
    pub transfers_sent: usize,
    /// Rows in `transfers`.
    pub transfers_recorded: u64,
    /// Payments `paid`/`paid_late` in the store.
    pub paid_in_store: u64,
    /// Flows whose transfer was sent but whose payment is not paid with exactly
    /// that transfer (and the amount) in the store.
    pub lost: Vec<String>,
    /// Payments credited more than once (more than one transfer, or more received
    /// than the amount), and transfers stored twice.
    pub double: Vec<String>,
    /// Payments in the store no flow paid, still `new` (claims whose answer was
    /// lost in a kill).
    pub unpaid_claims: u64,
    /// Payments no flow paid in another state than `new` (none may exist).
    pub strays: Vec<String>,
}

/// Counts, in the store at `db`, what each of `records` left.
pub fn account(db: &Path, records: &[FlowRecord]) -> Accounting {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .expect("open the store");
    let mut a = Accounting {
        flows: records.len(),
        completed: records.iter().filter(|r| r.completed).count(),
        ..Default::default()
    };
    let price = PRICE.to_string();
    for r in records.iter().filter(|r| !r.tx_hash.is_empty()) {
        a.transfers_sent += 1;
        let row: Option<(String, String, String)> = c
            .query_row(
                "SELECT state, amount, received FROM payments WHERE id = ?1",
                [&r.payment_id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .ok();
        let mut stmt = c
            .prepare("SELECT tx_hash, value FROM transfers WHERE payment_id = ?1")
            .expect("transfers query");
        let transfers: Vec<(String, String)> = stmt
            .query_map([&r.payment_id], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("read transfers")
            .collect::<Result<_, _>>()
            .expect("read transfers");
        let received = row
            .as_ref()
            .and_then(|(_, _, rc)| rc.parse::<u128>().ok())
            .unwrap_or(0);
        let paid = row.as_ref().is_some_and(|(state, amount, _)| {
            (state == "paid" || state == "paid_late") && *amount == price
        });
        if transfers.len() > 1 || received > PRICE {
            a.double
                .push(format!("{}: {row:?} {transfers:?}", r.payment_id));
        } else if !(paid
            && received == PRICE
            && transfers.len() == 1
            && transfers[0].0.eq_ignore_ascii_case(&r.tx_hash))
        {
            a.lost.push(format!(
                "{} (tx {}): {row:?} {transfers:?}",
                r.payment_id, r.tx_hash
            ));
        }
    }
    let count =
        |sql: &str| -> u64 { c.query_row(sql, [], |r| r.get::<_, i64>(0)).expect("count") as u64 };
    a.transfers_recorded = count("SELECT COUNT(*) FROM transfers");
    a.paid_in_store = count("SELECT COUNT(*) FROM payments WHERE state IN ('paid', 'paid_late')");
    let dup = count(
        "SELECT COUNT(*) FROM (SELECT 1 FROM transfers GROUP BY chain_id, tx_hash, log_index HAVING COUNT(*) > 1)",
    );
    if dup > 0 {
        a.double
            .push(format!("{dup} transfers stored more than once"));
    }
    let paid_for: std::collections::HashSet<&str> = records
        .iter()
        .filter(|r| !r.tx_hash.is_empty())
        .map(|r| r.payment_id.as_str())
        .collect();
    let mut stmt = c
        .prepare("SELECT id, state FROM payments")
        .expect("payments");
    let all: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("payments")
        .collect::<Result<_, _>>()
        .expect("payments");
    for (id, state) in all {
        if !paid_for.contains(id.as_str()) {
            if state == "new" {
                a.unpaid_claims += 1;
            } else {
                a.strays
                    .push(format!("payment {id}, which no flow paid, is {state}"));
            }
        }
    }
    a
}

impl Accounting {
    pub fn summary(&self) -> String {
        format!(
            "{} of {} flows completed; {} transfers sent, {} recorded, {} payments paid in the store; lost {}, credited twice {}",
            self.completed,
            self.flows,
            self.transfers_sent,
            self.transfers_recorded,
            self.paid_in_store,
            self.lost.len(),
            self.double.len()
        )
    }
}
