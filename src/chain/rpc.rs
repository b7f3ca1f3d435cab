//! The chain client: one or more JSON-RPC endpoints with failover in order.
//!
//! Owns talking to Ethereum nodes through alloy: the head, block hashes and the
//! ERC-20 `Transfer` logs of the token. Each call tries the endpoint that last
//! worked, then the others in configured order; the caller backs off when all fail.
//! It never decides anything about payments.

use std::sync::atomic::{AtomicUsize, Ordering};

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::SolEvent;

use crate::amount::Amount;

alloy::sol! {
    /// The ERC-20 Transfer event.
    event Transfer(address indexed from, address indexed to, uint256 value);
}

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

/// An RPC failure on every endpoint.
#[derive(Debug, thiserror::Error)]
#[error("all RPC endpoints failed; last error: {0}")]
pub struct RpcError(pub String);

/// A multi-endpoint JSON-RPC client.
pub struct Rpc {
    endpoints: Vec<(String, DynProvider)>,
    preferred: AtomicUsize,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc")
            .field("endpoints", &self.endpoints.len())
            .finish()
    }
}

impl Rpc {
    /// A client over `urls` (validated http(s) URLs), tried in order.
    pub fn new(urls: &[String]) -> Result<Rpc, RpcError> {
        let mut endpoints = Vec::new();
        for u in urls {
            let url = u
                .parse()
                .map_err(|e| RpcError(format!("bad RPC URL: {e}")))?;
            let p = ProviderBuilder::new().connect_http(url).erased();
            endpoints.push((redact(u), p));
        }
        if endpoints.is_empty() {
            return Err(RpcError("no RPC URLs configured".into()));
        }
        Ok(Rpc {
            endpoints,
            preferred: AtomicUsize::new(0),
        })
    }

    /// Endpoint indexes to try: the one that last worked, then the rest in order.
    fn order(&self) -> impl Iterator<Item = usize> + '_ {
        let first = self.preferred.load(Ordering::Relaxed);
        std::iter::once(first).chain((0..self.endpoints.len()).filter(move |&i| i != first))
    }

    fn worked(&self, i: usize) {
        self.preferred.store(i, Ordering::Relaxed);
    }

    /// The latest block number.
    pub async fn head(&self) -> Result<u64, RpcError> {
        let mut last = String::new();
        for i in self.order() {
            match self.endpoints[i].1.get_block_number().await {
                Ok(n) => {
                    self.worked(i);
                    return Ok(n);
                }
                Err(e) => last = format!("{}: {e}", self.endpoints[i].0),
            }
        }
        Err(RpcError(last))
    }

    /// The hash of canonical block `n` (`None` when the node does not have it).
    pub async fn block_hash(&self, n: u64) -> Result<Option<String>, RpcError> {
        let mut last = String::new();
        for i in self.order() {
            match self.endpoints[i]
                .1
                .get_block_by_number(BlockNumberOrTag::Number(n))
                .await
            {
                Ok(b) => {
                    self.worked(i);
                    return Ok(b.map(|b| format!("{:#x}", b.header.hash)));
                }
                Err(e) => last = format!("{}: {e}", self.endpoints[i].0),
            }
        }
        Err(RpcError(last))
    }

    /// Every `Transfer` log of `token` in blocks `from..=to`, decoded.
    /// Logs that do not decode as a standard Transfer are skipped.
    pub async fn transfer_logs(
        &self,
        token: Address,
        from: u64,
        to: u64,
    ) -> Result<Vec<TransferLog>, RpcError> {
        let filter = Filter::new()
            .address(token)
            .event_signature(Transfer::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        let mut last = String::new();
        for i in self.order() {
            match self.endpoints[i].1.get_logs(&filter).await {
                Ok(logs) => {
                    self.worked(i);
                    return Ok(logs.iter().filter_map(decode).collect());
                }
                Err(e) => last = format!("{}: {e}", self.endpoints[i].0),
            }
        }
        Err(RpcError(last))
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
