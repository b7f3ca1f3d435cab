//! The shared state of a running tollgate: validated config, derived keys, clock.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::chain::rpc::Rpc;
use crate::clock::Clock;
use crate::config::Config;
use crate::keys::Keys;
use crate::monetization::op::OpClient;
use crate::payments::service::PaymentService;

/// Everything request handling reads. Built once at start; cheap to share.
pub struct App {
    /// The validated configuration; replaced whole by a reload
    /// ([`crate::reload`]), so each reader takes one consistent snapshot.
    cfg: ArcSwap<Config>,
    /// Keys derived from the receipt key.
    pub keys: Keys,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// The payment engine; `None` when `[chain]` has no `rpc_urls`/`xpub`.
    pub payments: Option<Arc<PaymentService>>,
    /// A chain client for requests that look something up (a basket challenge
    /// answer's transaction); the watcher has its own.
    pub rpc: Option<Arc<Rpc>>,
    /// The Open Payments client (Web Monetization verification), when configured.
    pub op: Option<Arc<OpClient>>,
}

impl App {
    /// Builds the state for `cfg` with `clock`.
    pub fn new(cfg: Config, clock: Arc<dyn Clock>, payments: Option<Arc<PaymentService>>) -> App {
        let keys = Keys::derive(&cfg.secrets.receipt_key);
        App {
            cfg: ArcSwap::from_pointee(cfg),
            keys,
            clock,
            payments,
            rpc: None,
            op: None,
        }
    }

    /// The configuration now: one snapshot, unchanged by a reload while it is held
    /// (a request takes one and uses it throughout).
    pub fn cfg(&self) -> Arc<Config> {
        self.cfg.load_full()
    }

    /// Makes `cfg` the configuration of every request that starts from now on.
    /// The caller has checked that it differs only in what may change while running
    /// ([`crate::config::reload::restart_only_changes`]).
    pub fn replace_config(&self, cfg: Config) {
        self.cfg.store(Arc::new(cfg));
    }

    /// The same state with an Open Payments client.
    pub fn with_op(mut self, op: Option<Arc<OpClient>>) -> App {
        self.op = op;
        self
    }

    /// The same state with a chain client for lookups.
    pub fn with_rpc(mut self, rpc: Option<Arc<Rpc>>) -> App {
        self.rpc = rpc;
        self
    }

    /// Fresh randomness for a contract nonce.
    pub fn nonce(&self) -> [u8; 16] {
        let mut n = [0u8; 16];
        // The OS RNG failing is not recoverable; an all-zero nonce would still be
        // unique per (created, resource) only by chance, so refuse loudly instead.
        if let Err(e) = getrandom::getrandom(&mut n) {
            tracing::error!(error = %e, "OS random number generator failed");
            std::process::abort();
        }
        n
    }
}
