//! The Web Monetization part of the store: one row per incoming payment (what it
//! had received when last read, and how much of that was consumed by unlocks), and
//! the unlocks themselves (what backs a receipt minted from Web Monetization).
//! Crediting is one transaction: an incoming payment's units are consumed once, even
//! by concurrent verifies.

use async_trait::async_trait;

use super::StoreResult;

/// An unlock to record when the credit suffices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWmUnlock {
    /// 16 lowercase hex (the receipt's `pid`).
    pub id: String,
    /// The receipt's `h` (unique).
    pub hash: [u8; 32],
    /// What the receipt unlocks.
    pub scope: String,
    /// Receipt lifetime.
    pub access_ttl_secs: u64,
}

/// A recorded unlock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WmUnlock {
    /// Id (`pid`).
    pub id: String,
    /// Scope.
    pub scope: String,
    /// UNIX seconds.
    pub created_at: u64,
    /// Receipt lifetime.
    pub access_ttl_secs: u64,
    /// The incoming payment it consumed from.
    pub incoming_payment: String,
}

/// The outcome of a credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WmCredit {
    /// `required` units were consumed and the unlock recorded; `left` remain.
    Unlocked {
        /// Units still available on that incoming payment.
        left: u128,
    },
    /// Not enough: this many units are available.
    Insufficient {
        /// Available (received and not yet consumed).
        available: u128,
    },
}

/// Web Monetization credits in the durable store. Every method is atomic.
#[async_trait]
pub trait WmStore: Send + Sync {
    /// Records that the incoming payment `url` (of `wallet`) has received `received`
    /// units (never lowering what was seen before), then, when at least `required`
    /// units of it are not consumed yet, consumes `required` and records `unlock`.
    async fn wm_credit(
        &self,
        url: &str,
        wallet: &str,
        received: u128,
        required: u128,
        unlock: NewWmUnlock,
        now: u64,
    ) -> StoreResult<WmCredit>;

    /// The unlock whose receipt hash is `hash`.
    async fn wm_unlock(&self, hash: &[u8; 32]) -> StoreResult<Option<WmUnlock>>;
}
