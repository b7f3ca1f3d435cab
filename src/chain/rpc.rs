//! The chain client: one or more JSON-RPC endpoints, and the one *view* a watcher
//! tick reads the chain through (invariant 11).
//!
//! Owns talking to Ethereum nodes through alloy: heads, block hashes and the ERC-20
//! `Transfer` logs of the token. It never decides anything about payments.
//!
//! There is no remembered preference between endpoints. At the start of every tick
//! the watcher asks every endpoint for its head at once ([`Rpc::heads`], each answer
//! bounded by [`HEAD_TIMEOUT`], so a hung node cannot stall the tick), and
//! [`choose_views`] (pure) picks the endpoints that may serve it: in configured
//! order, those whose head is within [`MAX_LAG_BLOCKS`] of the highest head any
//! endpoint reported and not below the store's checkpoint. An endpoint that is
//! further behind is *lagging* for that tick: it is asked nothing else. The first
//! eligible endpoint becomes the tick's [`View`], and every call of the tick goes to
//! it; the others are only fallbacks for a tick that abandons its view. An endpoint
//! that failed is simply asked again on the next tick, so the watcher is back on
//! the first endpoint as soon as it is healthy and up to date.
//!
//! A view's logs come with their own evidence of completeness:
//! [`View::transfer_logs`] sends `eth_getLogs(from, to)` and a read of block `to` as
//! one JSON-RPC batch (one HTTP request, so a load balancer gives both to one
//! backend). A node answers `eth_getLogs` for a range past its own head with a
//! truncated list and no error; a missing block `to` in the same batch is how that
//! shows.

use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::client::BatchRequest;
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::SolEvent;

use crate::amount::Amount;

alloy::sol! {
    /// The ERC-20 Transfer event.
    event Transfer(address indexed from, address indexed to, uint256 value);
}

/// How many blocks an endpoint's head may trail the highest head any endpoint
/// reported in the same tick and still serve the tick. Endpoints polled a moment
/// apart differ by a block now and then; an endpoint further behind is lagging and
/// never decides a reorg or a scanned range.
pub const MAX_LAG_BLOCKS: u64 = 2;

/// How long one endpoint may take to report its head at the start of a tick; an
/// endpoint that does not answer in time counts as failed for that tick.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one call (or batch) on a tick's view may take before the view is
/// abandoned.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A decoded ERC-20 transfer log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferLog {
    /// Transaction hash, 0x-prefixed lowercase.
    pub tx_hash: String,
    /// Log index in the block.
    pub log_index: u64,
    /// Block number.
    pub block_number: u64,
    /// Block hash, 0x-prefixed lowercase.
    pub block_hash: String,
    /// Sender, EIP-55.
    pub from: String,
    /// Receiver, EIP-55.
    pub to: String,
    /// Value in base units, saturated at `u128::MAX`.
    pub value: Amount,
}

/// A failed RPC call, or no endpoint able to answer; the message names the
/// endpoint (redacted) and what failed.
#[derive(Debug, thiserror::Error)]
#[error("RPC: {0}")]
pub struct RpcError(pub String);

/// Which endpoints may serve a tick, from [`choose_views`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Views {
    /// Indexes of the eligible endpoints, in configured order: the first is the
    /// tick's view, the rest are fallbacks should it be abandoned.
    Eligible(Vec<usize>),
    /// Some endpoints answered, but every reported head is below the checkpoint:
    /// they are all behind what was already scanned, so nothing may be scanned or
    /// reverted.
    AllBehind {
        /// The highest head reported.
        highest: u64,
    },
    /// No endpoint reported a head.
    AllFailed,
}

/// The view-selection rule (pure). `heads[i]` is endpoint `i`'s reported head
/// (`None` when it failed); `checkpoint` is the last block the store has scanned.
///
/// An endpoint is eligible when its head is at least the highest reported head
/// minus [`MAX_LAG_BLOCKS`] and at least the checkpoint: an endpoint behind what
/// was already scanned cannot vouch for it, and one behind the others would take
/// blocks it does not have yet for a reorg. Eligible endpoints keep their
/// configured order.
pub fn choose_views(heads: &[Option<u64>], checkpoint: Option<u64>) -> Views {
    let Some(highest) = heads.iter().flatten().copied().max() else {
        return Views::AllFailed;
    };
    let floor = highest
        .saturating_sub(MAX_LAG_BLOCKS)
        .max(checkpoint.unwrap_or(0));
    let eligible: Vec<usize> = heads
        .iter()
        .enumerate()
        .filter(|(_, h)| h.is_some_and(|h| h >= floor))
        .map(|(i, _)| i)
        .collect();
    if eligible.is_empty() {
        Views::AllBehind { highest }
    } else {
        Views::Eligible(eligible)
    }
}

struct Endpoint {
    /// Scheme, host and port only.
    name: String,
    provider: DynProvider,
}

/// A multi-endpoint JSON-RPC client.
pub struct Rpc {
    endpoints: Vec<Endpoint>,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc")
            .field("endpoints", &self.endpoints.len())
            .finish()
    }
}

impl Rpc {
    /// A client over `urls` (validated http(s) URLs), in configured order.
    pub fn new(urls: &[String]) -> Result<Rpc, RpcError> {
        let mut endpoints = Vec::new();
        for u in urls {
            let url = u
                .parse()
                .map_err(|e| RpcError(format!("bad RPC URL: {e}")))?;
            let provider = ProviderBuilder::new().connect_http(url).erased();
            endpoints.push(Endpoint {
                name: redact(u),
                provider,
            });
        }
        if endpoints.is_empty() {
            return Err(RpcError("no RPC URLs configured".into()));
        }
        Ok(Rpc { endpoints })
    }

    /// Every endpoint's latest block number, asked concurrently, in configured
    /// order; each answer is bounded by [`HEAD_TIMEOUT`].
    pub async fn heads(&self) -> Vec<Result<u64, RpcError>> {
        let mut asks = tokio::task::JoinSet::new();
        for (i, e) in self.endpoints.iter().enumerate() {
            let provider = e.provider.clone();
            asks.spawn(async move {
                let head = tokio::time::timeout(HEAD_TIMEOUT, provider.get_block_number()).await;
                (i, head)
            });
        }
        let mut heads: Vec<Result<u64, RpcError>> = self
            .endpoints
            .iter()
            .map(|e| Err(RpcError(format!("{}: no answer", e.name))))
            .collect();
        while let Some(done) = asks.join_next().await {
            let Ok((i, head)) = done else { continue };
            let name = &self.endpoints[i].name;
            heads[i] = match head {
                Ok(Ok(n)) => Ok(n),
                Ok(Err(e)) => Err(RpcError(format!("{name}: eth_blockNumber: {e}"))),
                Err(_) => Err(RpcError(format!(
                    "{name}: eth_blockNumber: no answer within {HEAD_TIMEOUT:?}"
                ))),
            };
        }
        heads
    }

    /// The `Transfer` logs of `token` in the receipt of transaction `tx`, with the
    /// head of the endpoint that answered (the first one that does, in configured
    /// order). `Ok(None)` when the transaction has no receipt (unknown or not mined)
    /// or failed. Only a hint for a payer's challenge answer: what it returns is
    /// recorded provisionally and the scanner decides.
    pub async fn transfers_in_tx(
        &self,
        token: Address,
        tx: B256,
    ) -> Result<Option<(Vec<TransferLog>, u64)>, RpcError> {
        let mut last = RpcError("no RPC endpoint answered".into());
        for e in &self.endpoints {
            let ask = async {
                let receipt = e.provider.get_transaction_receipt(tx).await?;
                let head = e.provider.get_block_number().await?;
                Ok::<_, alloy::transports::TransportError>((receipt, head))
            };
            match tokio::time::timeout(CALL_TIMEOUT, ask).await {
                Ok(Ok((None, _))) => return Ok(None),
                Ok(Ok((Some(r), head))) => {
                    if !r.status() {
                        return Ok(None);
                    }
                    let logs = r
                        .inner
                        .logs()
                        .iter()
                        .filter(|l| l.address() == token)
                        .filter_map(decode)
                        .collect();
                    return Ok(Some((logs, head)));
                }
                Ok(Err(err)) => {
                    last = RpcError(format!("{}: eth_getTransactionReceipt: {err}", e.name))
                }
                Err(_) => {
                    last = RpcError(format!("{}: eth_getTransactionReceipt: timed out", e.name))
                }
            }
        }
        Err(last)
    }

    /// Endpoint `index` as a tick's view, at the `head` it reported; `None` when
    /// there is no such endpoint.
    pub fn view(&self, index: usize, head: u64) -> Option<View<'_>> {
        self.endpoints
            .get(index)
            .map(|endpoint| View { endpoint, head })
    }
}

/// One endpoint, as the only source of one tick: every call goes to it.
pub struct View<'a> {
    endpoint: &'a Endpoint,
    head: u64,
}

impl std::fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("endpoint", &self.endpoint.name)
            .field("head", &self.head)
            .finish()
    }
}

/// The one field of a block the watcher reads.
#[derive(Debug, serde::Deserialize)]
struct BlockHash {
    hash: B256,
}

impl View<'_> {
    /// The endpoint's name for logs (scheme, host and port).
    pub fn endpoint(&self) -> &str {
        &self.endpoint.name
    }

    /// The head this endpoint reported when the view was chosen.
    pub fn head(&self) -> u64 {
        self.head
    }

    fn failed(&self, what: &str, e: impl std::fmt::Display) -> RpcError {
        RpcError(format!("{}: {what}: {e}", self.endpoint.name))
    }

    /// The hash of block `n` on this endpoint; `None` when it does not have block
    /// `n` (the endpoint is behind, which is never evidence of a reorg).
    pub async fn block_hash(&self, n: u64) -> Result<Option<String>, RpcError> {
        let call = self
            .endpoint
            .provider
            .client()
            .request::<_, Option<BlockHash>>(
                "eth_getBlockByNumber",
                (BlockNumberOrTag::Number(n), false),
            );
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(b)) => Ok(b.map(|b| format!("{:#x}", b.hash))),
            Ok(Err(e)) => Err(self.failed("eth_getBlockByNumber", e)),
            Err(_) => Err(self.failed("eth_getBlockByNumber", "timed out")),
        }
    }

    /// Every `Transfer` log of `token` in blocks `from..=to`, decoded (logs that do
    /// not decode as a standard Transfer are skipped), and the hash of block `to`
    /// read in the same JSON-RPC batch: `None` when this endpoint does not have
    /// block `to`, in which case the logs are truncated and must not be used.
    pub async fn transfer_logs(
        &self,
        token: Address,
        from: u64,
        to: u64,
    ) -> Result<(Vec<TransferLog>, Option<String>), RpcError> {
        let filter = Filter::new()
            .address(token)
            .event_signature(Transfer::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        let mut batch = BatchRequest::new(self.endpoint.provider.client());
        let logs = batch
            .add_call::<_, Vec<Log>>("eth_getLogs", &(filter,))
            .map_err(|e| self.failed("eth_getLogs", e))?;
        let block = batch
            .add_call::<_, Option<BlockHash>>(
                "eth_getBlockByNumber",
                &(BlockNumberOrTag::Number(to), false),
            )
            .map_err(|e| self.failed("eth_getBlockByNumber", e))?;
        match tokio::time::timeout(CALL_TIMEOUT, batch.send()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(self.failed("eth_getLogs batch", e)),
            Err(_) => return Err(self.failed("eth_getLogs batch", "timed out")),
        }
        let logs = logs.await.map_err(|e| self.failed("eth_getLogs", e))?;
        let block = block
            .await
            .map_err(|e| self.failed("eth_getBlockByNumber", e))?;
        Ok((
            logs.iter().filter_map(decode).collect(),
            block.map(|b| format!("{:#x}", b.hash)),
        ))
    }
}

/// Decodes one log; `None` for removed logs, pending logs or non-standard events.
pub fn decode(log: &Log) -> Option<TransferLog> {
    if log.removed {
        return None;
    }
    let decoded = log.log_decode::<Transfer>().ok()?;
    let t = decoded.inner.data;
    let value = u128::try_from(t.value).unwrap_or(u128::MAX);
    Some(TransferLog {
        tx_hash: format!("{:#x}", log.transaction_hash?),
        log_index: log.log_index?,
        block_number: log.block_number?,
        block_hash: format!("{:#x}", log.block_hash?),
        from: t.from.to_checksum(None),
        to: t.to.to_checksum(None),
        value: Amount(value),
    })
}

/// An RPC URL for logs: scheme, host and port only (paths often carry API keys).
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_up_to_date_endpoint_is_the_view() {
        assert_eq!(
            choose_views(&[Some(100)], Some(90)),
            Views::Eligible(vec![0])
        );
        assert_eq!(
            choose_views(&[Some(100), Some(100)], Some(100)),
            Views::Eligible(vec![0, 1])
        );
        // Configured order wins over the highest head, within the allowance.
        assert_eq!(
            choose_views(&[Some(100 - MAX_LAG_BLOCKS), Some(100)], Some(90)),
            Views::Eligible(vec![0, 1])
        );
        // A fresh store has no checkpoint.
        assert_eq!(
            choose_views(&[Some(5), Some(6)], None),
            Views::Eligible(vec![0, 1])
        );
    }

    #[test]
    fn a_lagging_endpoint_is_never_the_view() {
        assert_eq!(
            choose_views(&[Some(100 - MAX_LAG_BLOCKS - 1), Some(100)], Some(90)),
            Views::Eligible(vec![1])
        );
        assert_eq!(
            choose_views(&[Some(3), Some(100), Some(99)], None),
            Views::Eligible(vec![1, 2])
        );
    }

    #[test]
    fn an_endpoint_below_the_checkpoint_is_never_the_view() {
        // Within the lag allowance of the others, but behind what was scanned.
        assert_eq!(
            choose_views(&[Some(99), Some(100)], Some(100)),
            Views::Eligible(vec![1])
        );
        assert_eq!(
            choose_views(&[Some(98), None, Some(99)], Some(100)),
            Views::AllBehind { highest: 99 }
        );
    }

    #[test]
    fn failed_endpoints_are_skipped_and_asked_again_next_time() {
        assert_eq!(
            choose_views(&[None, Some(100)], Some(100)),
            Views::Eligible(vec![1])
        );
        assert_eq!(choose_views(&[None, None], Some(100)), Views::AllFailed);
        assert_eq!(choose_views(&[], None), Views::AllFailed);
        // Healthy again: first in order again.
        assert_eq!(
            choose_views(&[Some(101), Some(101)], Some(100)),
            Views::Eligible(vec![0, 1])
        );
    }

    #[test]
    fn redact_keeps_scheme_host_and_port_only() {
        assert_eq!(
            redact("https://user:pw@rpc.example:8545/v3/KEY?x=1"),
            "https://rpc.example:8545"
        );
    }
}
