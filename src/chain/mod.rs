//! The chain side: watch-only addresses from the xpub, the multi-endpoint RPC client,
//! the Transfer-log scanner with reorg handling.

pub mod rpc;
pub mod watcher;
pub mod xpub;
