//! The durable store: the one authority for "paid" (invariant 3).
//!
//! Owns payments, credited transfers, the chain checkpoint and its recent block
//! hashes. Every method that moves money is atomic and states its invariant; the
//! uniqueness rules are database constraints, never check-then-write:
//! `UNIQUE(chain_id, tx_hash, log_index)` on transfers, one payment per contract
//! hash, one payment per derivation index and per address.
//!
//! The trait is implemented by [`sqlite::SqliteStore`] (embedded default) and
//! [`postgres::PostgresStore`] (fleets), which share their row mapping and
//! decisions (`shared`); the
//! store test suite in `tests/store_suite.rs` runs against every implementation.

pub mod basket;
pub mod postgres;
pub(crate) mod shared;
pub mod sqlite;
pub mod wm;

pub use basket::BasketStore;
pub use wm::WmStore;

use std::sync::Arc;

use async_trait::async_trait;

use crate::amount::Amount;
use crate::config::StoreBackend;
use crate::payments::state::PaymentState;

/// A payment id: 16 lowercase hex characters.
pub type PaymentId = String;

/// What a store call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or failed; callers fail closed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule refused the write (e.g. the contract was claimed already).
    #[error("conflict: {0}")]
    Conflict(String),
}

/// Result of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// A payment to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    /// Its id (16 lowercase hex).
    pub id: PaymentId,
    /// The contract hash it pays, for contract payments (unique).
    pub contract_hash: Option<[u8; 32]>,
    /// The contract token, for contract payments.
    pub contract_token: Option<String>,
    /// What a receipt unlocks (path or pattern), for contract payments.
    pub scope: Option<String>,
    /// Amount due.
    pub amount: Amount,
    /// Confirmations required.
    pub required_confirmations: u64,
    /// Receipt lifetime in seconds.
    pub access_ttl_secs: u64,
    /// UNIX seconds.
    pub created_at: u64,
    /// UNIX seconds.
    pub expires_at: u64,
    /// Opaque shop data (gateway), JSON text.
    pub data: Option<String>,
    /// Postback URL (gateway).
    pub postback_url: Option<String>,
}

/// A stored payment with its current view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Id.
    pub id: PaymentId,
    /// BIP32 child index of its receiving address.
    pub derivation_index: u32,
    /// Receiving address, EIP-55 checksummed.
    pub address: String,
    /// Contract hash, for contract payments.
    pub contract_hash: Option<[u8; 32]>,
    /// Contract token, for contract payments.
    pub contract_token: Option<String>,
    /// Receipt scope.
    pub scope: Option<String>,
    /// Amount due.
    pub amount: Amount,
    /// Total credited so far.
    pub received: Amount,
    /// State.
    pub state: PaymentState,
    /// First sight of a transfer (UNIX seconds).
    pub seen_at: Option<u64>,
    /// When it became paid (UNIX seconds).
    pub paid_at: Option<u64>,
    /// Hash of the (completing) transfer.
    pub tx_hash: Option<String>,
    /// Confirmations of the completing transfer.
    pub confirmations: u64,
    /// Confirmations required.
    pub required_confirmations: u64,
    /// Receipt lifetime.
    pub access_ttl_secs: u64,
    /// UNIX seconds.
    pub created_at: u64,
    /// UNIX seconds.
    pub expires_at: u64,
    /// Shop data (gateway).
    pub data: Option<String>,
    /// Postback URL (gateway).
    pub postback_url: Option<String>,
}

/// An ERC-20 transfer to one of our addresses, as found in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Chain id.
    pub chain_id: u64,
    /// Transaction hash, 0x-prefixed lowercase hex.
    pub tx_hash: String,
    /// Log index within the block.
    pub log_index: u64,
    /// Block number.
    pub block_number: u64,
    /// Block hash, 0x-prefixed lowercase hex.
    pub block_hash: String,
    /// Receiving address (EIP-55).
    pub to: String,
    /// Sender (EIP-55).
    pub from: String,
    /// Value in base units (saturated at u128::MAX).
    pub value: Amount,
}

/// A block the scanner has accepted as canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRef {
    /// Number.
    pub number: u64,
    /// Hash, 0x-prefixed lowercase hex.
    pub hash: String,
}

/// How the scanner's progress is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanBatch {
    /// Chain id.
    pub chain_id: u64,
    /// Transfers found in the range (to any of our addresses).
    pub transfers: Vec<Transfer>,
    /// The last block of the scanned range: the new checkpoint.
    pub checkpoint: BlockRef,
    /// The chain head when scanning (for confirmations).
    pub head: u64,
    /// UNIX seconds, the time of the scan.
    pub now: u64,
}

/// The payments in one state: how many, and what they received in all (exact,
/// saturating at `u128::MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTotal {
    /// The state.
    pub state: PaymentState,
    /// Payments in it.
    pub count: u64,
    /// The sum of their `received`.
    pub received: Amount,
}

/// A payment whose state changed in [`Store::apply_scan`] or [`Store::revert_to`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The payment after the change.
    pub payment: Payment,
    /// Its previous state.
    pub from: PaymentState,
}

/// A postback in the durable outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Stable delivery id (sent as `X-Tollgate-Delivery`; receivers de-duplicate by it).
    pub id: String,
    /// The paid payment.
    pub payment_id: PaymentId,
    /// Where it goes.
    pub url: String,
    /// The exact JSON body (signed at each attempt).
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// UNIX seconds: when it was queued (with the payment turning paid).
    pub created_at: u64,
    /// UNIX seconds: the next attempt; `None` once delivered or given up.
    pub next_attempt_at: Option<u64>,
    /// UNIX seconds: when a 2xx reply was received.
    pub delivered_at: Option<u64>,
    /// The last failure, for the merchant.
    pub last_error: Option<String>,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Failed; try again at `retry_at`, or give up when `None`.
    Failed {
        /// What went wrong (no secrets).
        error: String,
        /// Next attempt, UNIX seconds.
        retry_at: Option<u64>,
    },
}

/// The durable store. Implementations must make every method atomic.
#[async_trait]
pub trait Store: BasketStore + WmStore + Send + Sync + 'static {
    /// Creates the payment, allocating the next derivation index and its address
    /// (`derive(index)`) in the same transaction. Idempotent per contract hash:
    /// claiming a contract that already has a payment returns that payment and
    /// `false`. Two concurrent claims never share an index or an address.
    async fn claim(
        &self,
        new: NewPayment,
        derive: &(dyn Fn(u32) -> Result<String, String> + Send + Sync),
    ) -> StoreResult<(Payment, bool)>;

    /// The payment with `id`.
    async fn payment(&self, id: &str) -> StoreResult<Option<Payment>>;

    /// The payment for a contract hash.
    async fn payment_by_contract(&self, hash: &[u8; 32]) -> StoreResult<Option<Payment>>;

    /// Records a scanned block range atomically: inserts the transfers (a transfer
    /// already recorded, by `(chain_id, tx_hash, log_index)`, is ignored: it can
    /// credit one payment only, once), moves the checkpoint, remembers the block
    /// hash, and re-evaluates every payment that is not final. Returns the
    /// payments whose state changed.
    async fn apply_scan(&self, batch: ScanBatch) -> StoreResult<Vec<StateChange>>;

    /// Records transfers read from a transaction receipt a payer named (a basket
    /// challenge answer) before the scanner reached their block: they count as seen
    /// but never as confirmed until [`Store::apply_scan`] finds the same logs (a scan
    /// past their block that does not find them drops them). Transfers to addresses
    /// that are not ours and logs already recorded are ignored. Re-evaluates at
    /// `head`/`now` and returns the changes.
    async fn record_provisional(
        &self,
        transfers: Vec<Transfer>,
        head: u64,
        now: u64,
    ) -> StoreResult<Vec<StateChange>>;

    /// Re-evaluates non-final payments at `head`/`now` without new transfers
    /// (confirmations grow, deadlines pass).
    async fn refresh(&self, chain_id: u64, head: u64, now: u64) -> StoreResult<Vec<StateChange>>;

    /// Reorg: forgets every transfer and remembered block above `ancestor`, sets the
    /// checkpoint to `ancestor` and re-evaluates at `head`/`now`. Paid payments whose
    /// transfers were dropped move back.
    async fn revert_to(
        &self,
        chain_id: u64,
        ancestor: u64,
        head: u64,
        now: u64,
    ) -> StoreResult<Vec<StateChange>>;

    /// The checkpoint (last scanned block), if any.
    async fn checkpoint(&self, chain_id: u64) -> StoreResult<Option<BlockRef>>;

    /// Remembered recent blocks, newest first (for the common-ancestor walk).
    async fn recent_blocks(&self, chain_id: u64, limit: usize) -> StoreResult<Vec<BlockRef>>;

    /// Transfers credited to a payment.
    async fn transfers_of(&self, id: &str) -> StoreResult<Vec<Transfer>>;

    /// Every payment, by derivation index (for `tollgate addresses --used`).
    async fn all_payments(&self) -> StoreResult<Vec<Payment>>;

    /// Count and received sum per state, in one aggregate query (what a metrics
    /// scrape reads: no payment is loaded). States with no payment are absent.
    async fn payment_totals(&self) -> StoreResult<Vec<StateTotal>>;

    /// Postbacks whose next attempt is due at `now`, oldest first.
    /// (They are queued by the same transaction that marks a payment with a
    /// `postback_url` paid, so a paid payment's postback can never be lost.)
    async fn due_deliveries(&self, now: u64, limit: usize) -> StoreResult<Vec<Delivery>>;

    /// Records one attempt's outcome.
    async fn record_attempt(&self, id: &str, now: u64, outcome: AttemptOutcome) -> StoreResult<()>;

    /// The most recent deliveries, newest first (for the admin listener).
    async fn deliveries(&self, limit: usize) -> StoreResult<Vec<Delivery>>;

    /// Schedules delivery `id` again at `now` (same id, same body); false when unknown.
    async fn redeliver(&self, id: &str, now: u64) -> StoreResult<bool>;

    /// True while this instance is the one (of all sharing this database) that runs
    /// the chain watcher and the postback sender; the others stand by and take over
    /// when the holder dies. An embedded store has one instance: always true.
    async fn lead(&self) -> StoreResult<bool> {
        Ok(true)
    }
}

/// Opens the store `[store] url` names: a SQLite file (its directory created when
/// missing) or a PostgreSQL database (pending migrations applied under the
/// migration lock). Must run inside a tokio runtime.
pub async fn open(backend: &StoreBackend) -> StoreResult<Arc<dyn Store>> {
    match backend {
        StoreBackend::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            Ok(Arc::new(sqlite::SqliteStore::open(path)?))
        }
        StoreBackend::Postgres(url) => Ok(Arc::new(postgres::PostgresStore::open(url).await?)),
    }
}
