//! The chain watcher: a Pingora background service that scans the token's
//! `Transfer` logs by block range from a durable checkpoint, detects
//! reorganisations, and hands the results to the store (invariant 5).
//!
//! Each tick: read the head; check that the checkpoint block is still canonical
//! (else walk back through remembered block hashes to the common ancestor and
//! revert above it); scan `checkpoint+1..=head` in ranges; re-evaluate payments.
//! RPC failures back off exponentially; nothing is credited from an uncertain
//! answer. It never mints receipts or touches the proxy.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::services::ServiceReadyNotifier;

use crate::app::App;
use crate::chain::rpc::{Rpc, RpcError};
use crate::payments::service::PaymentService;
use crate::store::{BlockRef, ScanBatch, StateChange, StoreError, Transfer};

/// Blocks per `eth_getLogs` call.
pub const RANGE: u64 = 2000;
/// Remembered block hashes walked for a common ancestor.
pub const REORG_WINDOW: usize = 256;

/// What a tick can fail on.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// Every RPC endpoint failed.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The watcher service.
pub struct Watcher {
    app: Arc<App>,
    payments: Arc<PaymentService>,
    rpc: Rpc,
    token: Address,
}

impl Watcher {
    /// A watcher for `app`'s `[chain]`.
    pub fn new(app: Arc<App>, payments: Arc<PaymentService>, rpc: Rpc) -> Result<Watcher, String> {
        let token: Address = app
            .cfg
            .chain
            .token
            .parse()
            .map_err(|e| format!("chain.token: {e}"))?;
        Ok(Watcher {
            app,
            payments,
            rpc,
            token,
        })
    }

    /// One scan step. Returns the state changes it caused.
    pub async fn tick(&self) -> Result<Vec<StateChange>, TickError> {
        let chain = &self.app.cfg.chain;
        let store = &self.payments.store;
        let now = self.app.clock.now_secs();
        let head = self.rpc.head().await?;
        let mut changes = Vec::new();
        let mut from = match store.checkpoint(chain.chain_id).await? {
            None => chain.start_block,
            Some(cp) => {
                let canonical = self.rpc.block_hash(cp.number).await?;
                if cp.hash.is_empty() || canonical.as_deref() == Some(cp.hash.as_str()) {
                    cp.number + 1
                } else {
                    let ancestor = self.common_ancestor().await?;
                    tracing::warn!(
                        checkpoint = cp.number,
                        ancestor,
                        "chain reorganisation: reverting"
                    );
                    let reverted = store.revert_to(chain.chain_id, ancestor, head, now).await?;
                    self.payments.on_changes(&reverted);
                    changes.extend(reverted);
                    ancestor + 1
                }
            }
        };
        let mut scanned = false;
        while from <= head {
            let to = (from + RANGE - 1).min(head);
            // The range's last hash is read before its logs: a reorg in between leaves a
            // stale checkpoint hash that the next tick detects.
            let Some(hash) = self.rpc.block_hash(to).await? else {
                break;
            };
            let logs = self.rpc.transfer_logs(self.token, from, to).await?;
            let transfers = logs
                .into_iter()
                .filter(|l| self.payments.is_watched(&l.to))
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
                head,
                now,
            };
            let applied = store.apply_scan(batch).await?;
            self.payments.on_changes(&applied);
            changes.extend(applied);
            scanned = true;
            from = to + 1;
        }
        if !scanned {
            let refreshed = store.refresh(chain.chain_id, head, now).await?;
            self.payments.on_changes(&refreshed);
            changes.extend(refreshed);
        }
        Ok(changes)
    }

    /// The newest remembered block whose hash is still canonical.
    async fn common_ancestor(&self) -> Result<u64, TickError> {
        let chain = &self.app.cfg.chain;
        let recent = self
            .payments
            .store
            .recent_blocks(chain.chain_id, REORG_WINDOW)
            .await?;
        for b in &recent {
            if self.rpc.block_hash(b.number).await?.as_deref() == Some(b.hash.as_str()) {
                return Ok(b.number);
            }
        }
        // Deeper than we remember: rescan from the oldest remembered block's parent.
        let oldest = recent.last().map_or(chain.start_block, |b| b.number);
        Ok(oldest
            .saturating_sub(1)
            .max(chain.start_block.saturating_sub(1)))
    }
}

#[async_trait]
impl BackgroundService for Watcher {
    async fn start_with_ready_notifier(
        &self,
        mut shutdown: ShutdownWatch,
        ready: ServiceReadyNotifier,
    ) {
        let poll = Duration::from_millis(self.app.cfg.chain.poll_interval_ms);
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
                    let backoff = poll
                        .saturating_mul(2u32.saturating_pow(failures.min(5)))
                        .min(Duration::from_secs(60));
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
