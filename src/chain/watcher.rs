//! The chain watcher: a Pingora background service that scans the token's
//! `Transfer` logs by block range from a durable checkpoint, detects
//! reorganisations, and hands the results to the store (invariant 5).
//!
//! The chain is what an up-to-date endpoint says (invariant 11). Each tick:
//!
//! 1. ask every endpoint for its head ([`Rpc::heads`]) and choose the tick's view
//!    ([`choose_views`]): the first endpoint, in configured order, within
//!    [`MAX_LAG_BLOCKS`](crate::chain::rpc::MAX_LAG_BLOCKS) of the highest head and
//!    not below the checkpoint. Every call of the tick goes to that one endpoint;
//! 2. check that the checkpoint block is still canonical on the view. A *different*
//!    hash is a reorg: walk back through remembered block hashes to the common
//!    ancestor and revert above it. A *missing* block is never a reorg: the view is
//!    behind after all, and is abandoned;
//! 3. scan `checkpoint+1..=head` in ranges: read block `to`'s hash, then the logs
//!    and block `to` again in one batch ([`View::transfer_logs`]); a range is applied
//!    only when block `to` is still there with the same hash ([`check_range`]), so a
//!    truncated answer never moves the checkpoint;
//! 4. re-evaluate payments.
//!
//! A view that fails or turns out inconsistent mid-tick is abandoned: nothing
//! from it past the last complete range is applied, and the tick starts over on
//! the next eligible endpoint. When every endpoint fails the watcher backs off
//! exponentially; when every endpoint is behind the checkpoint it scans and reverts
//! nothing. Nothing is credited from an uncertain answer. It never mints receipts or
//! touches the proxy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::services::ServiceReadyNotifier;

use crate::app::App;
use crate::chain::rpc::{choose_views, Rpc, RpcError, TransferLog, View, Views};
use crate::payments::service::PaymentService;
use crate::store::{BlockRef, ScanBatch, StateChange, StoreError, Transfer};

/// Blocks per `eth_getLogs` call.
pub const RANGE: u64 = 2000;
/// Remembered block hashes walked for a common ancestor.
pub const REORG_WINDOW: usize = 256;

/// What a tick can fail on.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// No endpoint could serve the tick (each failed, or turned out behind).
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether a range read on one view may be applied (pure). `before` is block
/// `to`'s hash read before the logs, `after` the one read in the same batch as the
/// logs (`None`: the endpoint does not have block `to`, so its logs stop short of
/// it). The two must agree, and every log must lie in `from..=to` (those of block
/// `to` in that very block). The error says why the range is refused.
pub fn check_range(
    from: u64,
    to: u64,
    before: &str,
    after: Option<&str>,
    logs: &[TransferLog],
) -> Result<(), String> {
    match after {
        None => {
            return Err(format!(
                "block {to} is missing next to its logs: the endpoint is behind and its logs are truncated"
            ))
        }
        Some(h) if h != before => {
            return Err(format!(
                "block {to} changed from {before} to {h} while its logs were read (reorg in progress)"
            ))
        }
        Some(_) => {}
    }
    if let Some(l) = logs
        .iter()
        .find(|l| l.block_number < from || l.block_number > to)
    {
        return Err(format!(
            "a log in block {} outside the range {from}..={to}",
            l.block_number
        ));
    }
    if let Some(l) = logs
        .iter()
        .find(|l| l.block_number == to && l.block_hash != before)
    {
        return Err(format!(
            "a log in block {to} with hash {} instead of {before}",
            l.block_hash
        ));
    }
    Ok(())
}

/// The watcher service.
pub struct Watcher {
    app: Arc<App>,
    payments: Arc<PaymentService>,
    rpc: Rpc,
    token: Address,
    /// The head the store last evaluated payments at. Confirmations are never
    /// counted from a lower head (a view may trail an earlier one by a block or
    /// two), so a paid payment never moves back for it; only a reorg, decided by
    /// an up-to-date view, sets it lower.
    evaluated: AtomicU64,
    /// What this instance was at the last tick, for logging the transitions:
    /// 0 not yet known, 1 standing by, 2 leading.
    leading: std::sync::atomic::AtomicU8,
}

impl Watcher {
    /// A watcher for `app`'s `[chain]`.
    pub fn new(app: Arc<App>, payments: Arc<PaymentService>, rpc: Rpc) -> Result<Watcher, String> {
        let token: Address = app
            .cfg()
            .chain
            .token
            .parse()
            .map_err(|e| format!("chain.token: {e}"))?;
        Ok(Watcher {
            app,
            payments,
            rpc,
            token,
            evaluated: AtomicU64::new(0),
            leading: std::sync::atomic::AtomicU8::new(0),
        })
    }

    /// The head to evaluate payments at, given a view's `head`: never below the
    /// head of an earlier evaluation.
    fn evaluation_head(&self, head: u64) -> u64 {
        self.evaluated.fetch_max(head, Ordering::Relaxed).max(head)
    }

    /// One scan step. Returns the state changes it caused.
    pub async fn tick(&self) -> Result<Vec<StateChange>, TickError> {
        let chain = &self.app.cfg().chain;
        let store = &self.payments.store;
        // One instance of those sharing a database watches the chain; the others
        // stand by until its lock is free.
        let lead = store.lead().await;
        let leading = *lead.as_ref().unwrap_or(&false);
        if self.leading.swap(1 + u8::from(leading), Ordering::Relaxed) != 1 + u8::from(leading) {
            if leading {
                tracing::info!(
                    "chain watcher: leading (this instance scans the chain and sends postbacks)"
                );
            } else {
                tracing::info!("chain watcher: standing by (another instance leads)");
            }
        }
        if !lead? {
            return Ok(Vec::new());
        }
        let now = self.app.clock.now_secs();
        let heads = self.rpc.heads().await;
        let checkpoint = store.checkpoint(chain.chain_id).await?;
        let reported: Vec<Option<u64>> = heads.iter().map(|h| h.as_ref().ok().copied()).collect();
        let metrics = crate::metrics::global();
        if let Some(m) = metrics {
            m.rpc_errors(reported.iter().filter(|h| h.is_none()).count() as u64);
        }
        let highest = reported.iter().flatten().copied().max();
        let mut changes = Vec::new();
        match choose_views(&reported, checkpoint.as_ref().map(|c| c.number)) {
            Views::AllFailed => {
                let why: Vec<String> = heads
                    .into_iter()
                    .filter_map(|h| h.err().map(|e| e.0))
                    .collect();
                Err(RpcError(format!("every endpoint failed: {}", why.join("; "))).into())
            }
            Views::AllBehind { highest } => {
                let cp = checkpoint.map_or(0, |c| c.number);
                tracing::warn!(
                    checkpoint = cp,
                    highest_head = highest,
                    "every RPC endpoint is behind the checkpoint: nothing scanned, nothing reverted"
                );
                // Deadlines still pass; confirmations stay where they were.
                let head = self.evaluation_head(cp);
                let refreshed = store.refresh(chain.chain_id, head, now).await?;
                self.payments.on_changes(&refreshed).await;
                changes.extend(refreshed);
                Ok(changes)
            }
            Views::Eligible(order) => {
                let mut last = RpcError("no endpoint could serve the tick".into());
                for i in order {
                    let Some(head) = reported.get(i).copied().flatten() else {
                        continue;
                    };
                    let Some(view) = self.rpc.view(i, head) else {
                        continue;
                    };
                    match self.scan(&view, now, &mut changes).await {
                        Ok(()) => {
                            if let (Some(m), Some(top)) = (metrics, highest) {
                                m.set_head_lag(top.saturating_sub(view.head()));
                            }
                            return Ok(changes);
                        }
                        Err(TickError::Store(e)) => return Err(e.into()),
                        Err(TickError::Rpc(e)) => {
                            if let Some(m) = metrics {
                                m.rpc_errors(1);
                            }
                            tracing::warn!(
                                endpoint = view.endpoint(),
                                head = view.head(),
                                error = %e,
                                "RPC view abandoned for this tick; trying the next up-to-date endpoint"
                            );
                            last = e;
                        }
                    }
                }
                Err(last.into())
            }
        }
    }

    /// The tick on one view: reorg check, ranges, re-evaluation. Any RPC failure or
    /// inconsistency of the view returns before anything more is applied.
    async fn scan(
        &self,
        view: &View<'_>,
        now: u64,
        changes: &mut Vec<StateChange>,
    ) -> Result<(), TickError> {
        let chain = &self.app.cfg().chain;
        let store = &self.payments.store;
        let head = view.head();
        let behind = |n: u64| {
            RpcError(format!(
                "{} reported head {head} but does not have block {n}: it is behind",
                view.endpoint()
            ))
        };
        // Read again: an abandoned view earlier in this tick may have moved it.
        let mut from = match store.checkpoint(chain.chain_id).await? {
            None => chain.start_block,
            Some(cp) if cp.number > head => {
                return Err(RpcError(format!(
                    "{} is at {head}, below the checkpoint {}",
                    view.endpoint(),
                    cp.number
                ))
                .into())
            }
            Some(cp) if cp.hash.is_empty() => cp.number + 1,
            Some(cp) => match view.block_hash(cp.number).await? {
                None => return Err(behind(cp.number).into()),
                Some(h) if h == cp.hash => cp.number + 1,
                Some(_) => {
                    let ancestor = self.common_ancestor(view).await?;
                    tracing::warn!(
                        endpoint = view.endpoint(),
                        checkpoint = cp.number,
                        ancestor,
                        head,
                        "chain reorganisation: reverting"
                    );
                    let reverted = store.revert_to(chain.chain_id, ancestor, head, now).await?;
                    self.evaluated.store(head, Ordering::Relaxed);
                    self.payments.on_changes(&reverted).await;
                    changes.extend(reverted);
                    ancestor + 1
                }
            },
        };
        let mut scanned = false;
        while from <= head {
            let to = (from + RANGE - 1).min(head);
            // Block `to`'s hash is read before its logs and again in their batch:
            // equal, the logs are complete and of that chain.
            let Some(hash) = view.block_hash(to).await? else {
                return Err(behind(to).into());
            };
            let (logs, again) = view.transfer_logs(self.token, from, to).await?;
            check_range(from, to, &hash, again.as_deref(), &logs)
                .map_err(|why| RpcError(format!("{}: {why}", view.endpoint())))?;
            // Every Transfer of the token goes to the store, which credits those to
            // its own addresses in the same transaction that moves the checkpoint: an
            // address claimed a moment ago, or by another instance on the same
            // database, is never missed by a stale in-memory set.
            let transfers = logs
                .into_iter()
                .map(|l| Transfer {
                    chain_id: chain.chain_id,
                    tx_hash: l.tx_hash,
                    log_index: l.log_index,
                    block_number: l.block_number,
                    block_hash: l.block_hash,
                    to: l.to,
                    from: l.from,
                    value: l.value,
                })
                .collect();
            let batch = ScanBatch {
                chain_id: chain.chain_id,
                transfers,
                checkpoint: BlockRef { number: to, hash },
                head: self.evaluation_head(head),
                now,
            };
            let applied = store.apply_scan(batch).await?;
            self.payments.on_changes(&applied).await;
            changes.extend(applied);
            scanned = true;
            from = to + 1;
        }
        if !scanned {
            let head = self.evaluation_head(head);
            let refreshed = store.refresh(chain.chain_id, head, now).await?;
            self.payments.on_changes(&refreshed).await;
            changes.extend(refreshed);
        }
        Ok(())
    }

    /// The newest remembered block whose hash the view still has. A remembered
    /// block the view does not have means the view is behind: an error, never a
    /// deeper reorg.
    async fn common_ancestor(&self, view: &View<'_>) -> Result<u64, TickError> {
        let chain = &self.app.cfg().chain;
        let recent = self
            .payments
            .store
            .recent_blocks(chain.chain_id, REORG_WINDOW)
            .await?;
        for b in &recent {
            match view.block_hash(b.number).await? {
                Some(h) if h == b.hash => return Ok(b.number),
                Some(_) => {}
                None => {
                    return Err(RpcError(format!(
                        "{} reported head {} but does not have block {}: it is behind",
                        view.endpoint(),
                        view.head(),
                        b.number
                    ))
                    .into())
                }
            }
        }
        // Deeper than we remember: rescan from the oldest remembered block's parent.
        let oldest = recent.last().map_or(chain.start_block, |b| b.number);
        Ok(oldest
            .saturating_sub(1)
            .max(chain.start_block.saturating_sub(1)))
    }
}

/// How long the watcher waits after its `failures`-th failed tick in a row (pure):
/// the poll interval doubled per failure (at most 32 times, at most 60 s), put at a
/// point of that interval's upper half chosen by `unit` (`0.0..=1.0`). Without the
/// jitter the retries fall into step with an endpoint that goes down and up
/// periodically: once one lands on its down time, the next ones do too, for as long
/// as the two periods stay close (a payment then waits out the whole flapping).
pub fn backoff(poll: Duration, failures: u32, unit: f64) -> Duration {
    let full = poll
        .saturating_mul(2u32.saturating_pow(failures.min(5)))
        .min(Duration::from_secs(60));
    full.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

/// A uniform draw from `0.0..=1.0` (1.0, the longest wait, if the OS has no
/// randomness to give).
fn random_unit() -> f64 {
    let mut b = [0u8; 4];
    match getrandom::getrandom(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX),
        Err(_) => 1.0,
    }
}

#[async_trait]
impl BackgroundService for Watcher {
    async fn start_with_ready_notifier(
        &self,
        mut shutdown: ShutdownWatch,
        ready: ServiceReadyNotifier,
    ) {
        let poll = Duration::from_millis(self.app.cfg().chain.poll_interval_ms);
        let mut ready = Some(ready);
        let mut failures: u32 = 0;
        loop {
            let wait = match self.tick().await {
                Ok(_) => {
                    failures = 0;
                    poll
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    // Only the leader backs off (its endpoints or the store fail).
                    // An instance standing by, or whose lock connection failed, tries
                    // the lock again after one poll interval: a fleet's takeover comes
                    // within two poll intervals of the holder's death.
                    let backoff = if self.leading.load(Ordering::Relaxed) == 2 {
                        backoff(poll, failures, random_unit())
                    } else {
                        poll
                    };
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "chain watcher tick failed");
                    backoff
                }
            };
            if let Some(r) = ready.take() {
                r.notify_ready();
                println!("tollgate ready: chain watcher synced");
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;

    fn log(block: u64, hash: &str) -> TransferLog {
        TransferLog {
            tx_hash: "0x01".into(),
            log_index: 0,
            block_number: block,
            block_hash: hash.into(),
            from: "0xa".into(),
            to: "0xb".into(),
            value: Amount(1),
        }
    }

    #[test]
    fn the_backoff_doubles_to_its_cap_within_the_upper_half() {
        let poll = Duration::from_millis(200);
        for unit in [0.0, 0.3, 1.0] {
            for failures in 1..10u32 {
                let full = poll * 2u32.pow(failures.min(5));
                let b = backoff(poll, failures, unit);
                assert!(b >= full / 2 && b <= full, "{failures} {unit}: {b:?}");
            }
        }
        assert_eq!(backoff(poll, 1, 0.0), poll);
        assert_eq!(backoff(poll, 7, 1.0), poll * 32);
        // Never past 60 s, whatever the poll interval.
        let slow = Duration::from_secs(10);
        assert_eq!(backoff(slow, 9, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(slow, 9, 0.0), Duration::from_secs(30));
        assert_eq!(backoff(slow, 9, 7.0), Duration::from_secs(60));
    }

    /// When the first retry that finds the endpoint up happens, for an endpoint
    /// down 3 s, up 3 s, and so on, down from `t = 0` (where the first tick fails),
    /// polled every 200 ms; `unit` draws each wait's jitter.
    fn first_success(mut unit: impl FnMut() -> f64) -> f64 {
        let poll = Duration::from_millis(200);
        let (mut t, mut failures) = (0.0f64, 0u32);
        while t % 6.0 < 3.0 {
            failures += 1;
            t += backoff(poll, failures, unit()).as_secs_f64();
        }
        t
    }

    // Rules out: a chain RPC that flaps (down and up every few seconds) stalling
    // confirmations for as long as it flaps, as the fault campaign saw
    // (benches/campaign/faults.rs: RPC down 3 s / up 3 s, no payment confirmed in
    // 60 s). Without jitter every retry at the 6.4 s cap lands 0.4 s later in the
    // 6 s cycle than the one before, on the down time for most of a minute.
    #[test]
    fn a_periodic_outage_cannot_keep_the_retries_on_its_down_time() {
        let fixed = first_success(|| 1.0);
        assert!(fixed > 50.0, "the unjittered schedule: {fixed}");
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut draw = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % 1_000_001) as f64 / 1_000_000.0
        };
        let worst = (0..1000)
            .map(|_| first_success(&mut draw))
            .fold(0.0, f64::max);
        assert!(
            worst < 10.0,
            "the jittered schedule, worst of 1000: {worst}"
        );
    }

    #[test]
    fn a_complete_range_is_applied() {
        assert_eq!(check_range(10, 20, "0xh", Some("0xh"), &[]), Ok(()));
        let logs = [log(10, "0xa"), log(15, "0xb"), log(20, "0xh")];
        assert_eq!(check_range(10, 20, "0xh", Some("0xh"), &logs), Ok(()));
    }

    #[test]
    fn a_truncated_range_is_refused() {
        // The endpoint does not have block `to`: its logs stop at its own head.
        let e = check_range(10, 20, "0xh", None, &[log(12, "0xa")]).unwrap_err();
        assert!(e.contains("behind"), "{e}");
    }

    #[test]
    fn a_range_whose_last_block_changed_is_refused() {
        let e = check_range(10, 20, "0xh", Some("0xother"), &[]).unwrap_err();
        assert!(e.contains("reorg in progress"), "{e}");
        let e = check_range(10, 20, "0xh", Some("0xh"), &[log(20, "0xother")]).unwrap_err();
        assert!(e.contains("instead of"), "{e}");
    }

    #[test]
    fn logs_outside_the_range_are_refused() {
        assert!(check_range(10, 20, "0xh", Some("0xh"), &[log(21, "0xz")]).is_err());
        assert!(check_range(10, 20, "0xh", Some("0xh"), &[log(9, "0xz")]).is_err());
    }
}
