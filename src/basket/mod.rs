//! The shopping basket (SPEC section 8, the webinos Payment API).
//!
//! * [`bill`]: the pure bill arithmetic (items, rebates, tax, shipping, total) in
//!   signed integer base units;
//! * [`item`]: a client's `ShoppingItem`, checked against the catalogue (pure);
//! * [`view`]: the basket as JSON (items, extras, `totalBill`) from its stored lines;
//! * [`service`]: the calls (create, read, addItem, update, release) over the store
//!   and the payment engine;
//! * [`checkout`]: checkout (one multi-item contract, claimed at once) and
//!   answerChallenge.
//!
//! Baskets and their lines live in the durable store ([`crate::store::BasketStore`]):
//! a restart loses no open basket and no checkout. Every amount on a bill comes from
//! the catalogue and the rules, never from the client.

pub mod bill;
pub mod checkout;
pub mod item;
pub mod service;
pub mod view;

/// A basket call's failure: an HTTP status and a `{code, message}` body (the webinos
/// `PaymentErrors` codes where they fit, SPEC section 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasketError {
    /// HTTP status.
    pub status: u16,
    /// Error code.
    pub code: &'static str,
    /// Human message.
    pub message: String,
    /// For a 429: seconds until the client's budget is renewed (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl BasketError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: u16, code: &'static str, message: &str) -> BasketError {
        BasketError {
            status,
            code,
            message: message.to_string(),
            retry_after: None,
        }
    }

    /// 429 `rate_limited`: the client's budget of new store records is spent.
    pub fn rate_limited(message: &str, retry_after: u64) -> BasketError {
        BasketError {
            retry_after: Some(retry_after),
            ..BasketError::new(429, "rate_limited", message)
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: &str) -> BasketError {
        BasketError::new(400, "bad_request", message)
    }

    /// 404 `basket_not_open`.
    pub fn not_open() -> BasketError {
        BasketError::new(
            404,
            "basket_not_open",
            "no open basket with this id and secret (unknown, released, expired, or a wrong secret)",
        )
    }

    /// 503 `store_unavailable` (the cause is logged, never sent).
    pub fn store(e: impl std::fmt::Display) -> BasketError {
        tracing::error!(error = %e, "store unavailable");
        BasketError::new(
            503,
            "store_unavailable",
            "payment store unavailable; try again shortly",
        )
    }
}
