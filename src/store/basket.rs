//! The basket part of the store (SPEC section 8): baskets, their lines, and refund
//! holds. The rules that protect money are constraints, never check-then-write:
//! a basket changes only at the revision its writer read (compare-and-swap), and a
//! product of a payment can be held for refund by one basket at a time
//! (`PRIMARY KEY (payment_id, product_id)` on the holds), so it is never refunded
//! twice, not even by two concurrent baskets.

use async_trait::async_trait;

use super::{PaymentId, StoreResult};

/// Where a basket stands, as stored. (Whether a checked-out basket is paid or failed
/// is its payment's state.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasketState {
    /// Items can be added.
    Open,
    /// Checked out: locked, its contract minted.
    CheckedOut,
    /// Released by its holder or after its ttl.
    Released,
}

impl BasketState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            BasketState::Open => "open",
            BasketState::CheckedOut => "checked_out",
            BasketState::Released => "released",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<BasketState> {
        Some(match s {
            "open" => BasketState::Open,
            "checked_out" => BasketState::CheckedOut,
            "released" => BasketState::Released,
            _ => return None,
        })
    }
}

/// A basket to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBasket {
    /// 16 lowercase hex.
    pub id: String,
    /// SHA-256 of the basket secret (the secret itself is never stored).
    pub secret_hash: [u8; 32],
    /// The webinos customerID.
    pub customer_id: String,
    /// The webinos shopID.
    pub shop_id: String,
    /// UNIX seconds.
    pub created_at: u64,
    /// UNIX seconds: released after this unless its checkout is paid.
    pub expires_at: u64,
}

/// One line of a basket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasketLine {
    /// Catalogue product id.
    pub product_id: String,
    /// A refund (negative price) line.
    pub refund: bool,
    /// How many.
    pub count: u32,
    /// For a refund: the paid payment whose product it refunds.
    pub refund_of: Option<PaymentId>,
    /// The product's `unlocks` patterns when the line was written.
    pub unlocks: Vec<String>,
}

/// A stored basket with its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Basket {
    /// Id.
    pub id: String,
    /// SHA-256 of its secret.
    pub secret_hash: [u8; 32],
    /// customerID.
    pub customer_id: String,
    /// shopID.
    pub shop_id: String,
    /// State.
    pub state: BasketState,
    /// Bumped by every change (the compare-and-swap token).
    pub revision: u64,
    /// UNIX seconds.
    pub created_at: u64,
    /// UNIX seconds.
    pub expires_at: u64,
    /// The contract token minted at checkout.
    pub contract_token: Option<String>,
    /// The challenge type asked for at checkout.
    pub challenge: Option<String>,
    /// The checkout's payment, once claimed.
    pub payment_id: Option<PaymentId>,
    /// Lines in the order they were first added.
    pub lines: Vec<BasketLine>,
}

/// What a paid basket payment bought, one entry per product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    /// Product id.
    pub product_id: String,
    /// How many.
    pub count: u32,
    /// Its `unlocks` patterns.
    pub unlocks: Vec<String>,
    /// True once a refund of it is final (the refunding basket's payment unlocks).
    pub refunded: bool,
}

/// Why a basket write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasketWrite {
    /// Written.
    Done,
    /// The basket changed since it was read (retry with a fresh read), or it is not
    /// open any more.
    Stale,
    /// The refunded product is already held for refund (or refunded) by a basket.
    RefundTaken,
}

/// Baskets in the durable store. Every method is atomic.
#[async_trait]
pub trait BasketStore: Send + Sync {
    /// Creates a basket (ids and secret hashes are unique).
    async fn create_basket(&self, new: NewBasket) -> StoreResult<()>;

    /// The basket with `id`.
    async fn basket(&self, id: &str) -> StoreResult<Option<Basket>>;

    /// The basket whose secret hashes to `secret_hash`.
    async fn basket_by_secret(&self, secret_hash: &[u8; 32]) -> StoreResult<Option<Basket>>;

    /// Sets the line `(line.product_id, line.refund)` of an open, unexpired basket at
    /// `revision` to `line` (adding it at the end when new), and, for a refund line,
    /// takes the refund hold on `(refund_of, product_id)` in the same transaction.
    async fn put_line(
        &self,
        id: &str,
        revision: u64,
        line: BasketLine,
        now: u64,
    ) -> StoreResult<BasketWrite>;

    /// Locks an open, unexpired basket at `revision` for checkout: state
    /// `checked_out`, its contract token and challenge type, `expires_at` raised to
    /// `expires_at` when later.
    async fn lock_basket(
        &self,
        id: &str,
        revision: u64,
        contract_token: &str,
        challenge: &str,
        expires_at: u64,
    ) -> StoreResult<BasketWrite>;

    /// Records the checkout's claimed payment.
    async fn set_basket_payment(&self, id: &str, payment_id: &str) -> StoreResult<()>;

    /// Releases a basket: state `released`; its refund holds are dropped unless its
    /// payment unlocks (then the refunds are final and stay). Idempotent.
    async fn release_basket(&self, id: &str) -> StoreResult<()>;

    /// Releases every basket past `expires_at` at `now` whose payment is not paid
    /// or on its way (`new`, `expired`, `underpaid`, or none); returns how many.
    async fn release_expired_baskets(&self, now: u64) -> StoreResult<u64>;

    /// What the basket paid by `payment_id` bought (empty for other payments).
    async fn purchases(&self, payment_id: &str) -> StoreResult<Vec<Purchase>>;

    /// The contract hashes of the payments whose products the basket paid by
    /// `payment_id` refunds (their paid facts change when it is paid or reverted).
    async fn refunded_by(&self, payment_id: &str) -> StoreResult<Vec<[u8; 32]>>;
}
