//! What the SQLite and PostgreSQL stores share: the row mapping (through
//! [`Cols`], which each backend implements for its row type), and every decision
//! that does not depend on the SQL dialect: how a payment is re-evaluated after
//! its transfers changed ([`reevaluated`]), the postback a payment queues when it
//! turns paid ([`postback`]), and how a Web Monetization credit is consumed
//! ([`wm_decide`]). Each backend only runs the SQL.

use crate::amount::Amount;
use crate::payments::state::{evaluate, Credit, PaymentState, Terms};

use super::basket::{Basket, BasketState};
use super::wm::WmCredit;
use super::{Delivery, Payment, StateChange, StoreError, StoreResult, Transfer};

/// How many block hashes are remembered per chain (the reorg walk-back window).
pub const KEEP_BLOCKS: i64 = 256;

/// Payments that are otherwise final (`paid`, `paid_late`, `underpaid`, `expired`)
/// are still re-evaluated while one of their transfers is within this many blocks
/// of the head: a reorg can still take it away.
pub const REEVALUATE_WINDOW: u64 = 256;

/// Reads typed columns from a row of either backend, by position.
pub(crate) trait Cols {
    /// A text column.
    fn text(&self, i: usize) -> StoreResult<String>;
    /// A nullable text column.
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>>;
    /// A nullable non-negative integer column (refused, never wrapped, when negative).
    fn opt_u64(&self, i: usize) -> StoreResult<Option<u64>>;
    /// A nullable 32-byte hash column.
    fn opt_hash(&self, i: usize) -> StoreResult<Option<[u8; 32]>>;
    /// A boolean column (SQLite stores 0/1).
    fn flag(&self, i: usize) -> StoreResult<bool>;

    /// A non-negative integer column.
    fn u64(&self, i: usize) -> StoreResult<u64> {
        self.opt_u64(i)?
            .ok_or_else(|| bad(i, "unexpected NULL".to_string()))
    }

    /// A `u32` column.
    fn u32(&self, i: usize) -> StoreResult<u32> {
        let v = self.u64(i)?;
        u32::try_from(v).map_err(|_| bad(i, format!("{v} is out of range")))
    }

    /// An amount column: a decimal string of base units.
    fn amount(&self, i: usize) -> StoreResult<Amount> {
        let s = self.text(i)?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(i, format!("bad amount {s:?}")));
        }
        s.parse::<u128>()
            .map(Amount)
            .map_err(|e| bad(i, e.to_string()))
    }

    /// A payment state column.
    fn state(&self, i: usize) -> StoreResult<PaymentState> {
        let s = self.text(i)?;
        PaymentState::parse(&s).ok_or_else(|| bad(i, format!("bad payment state {s:?}")))
    }
}

/// A column that does not hold what the schema promises.
pub(crate) fn bad(i: usize, what: String) -> StoreError {
    StoreError::Unavailable(format!("column {i}: {what}"))
}

/// The payment columns, in the order [`payment_from`] reads them.
pub(crate) const PAYMENT_COLUMNS: &str = "id, derivation_index, address, contract_hash, \
     contract_token, scope, amount, received, state, seen_at, paid_at, tx_hash, confirmations, \
     required_confirmations, access_ttl_secs, created_at, expires_at, data, postback_url";

/// A payment from a row of [`PAYMENT_COLUMNS`].
pub(crate) fn payment_from(r: &impl Cols) -> StoreResult<Payment> {
    Ok(Payment {
        id: r.text(0)?,
        derivation_index: r.u32(1)?,
        address: r.text(2)?,
        contract_hash: r.opt_hash(3)?,
        contract_token: r.opt_text(4)?,
        scope: r.opt_text(5)?,
        amount: r.amount(6)?,
        received: r.amount(7)?,
        state: r.state(8)?,
        seen_at: r.opt_u64(9)?,
        paid_at: r.opt_u64(10)?,
        tx_hash: r.opt_text(11)?,
        confirmations: r.u64(12)?,
        required_confirmations: r.u64(13)?,
        access_ttl_secs: r.u64(14)?,
        created_at: r.u64(15)?,
        expires_at: r.u64(16)?,
        data: r.opt_text(17)?,
        postback_url: r.opt_text(18)?,
    })
}

/// The transfer columns, in the order [`stored_from`] reads them.
pub(crate) const TRANSFER_COLUMNS: &str = "chain_id, tx_hash, log_index, block_number, \
     block_hash, to_address, from_address, value, seen_at, provisional";

/// A credited transfer with the time tollgate first recorded it.
pub(crate) struct Stored {
    /// The transfer.
    pub(crate) transfer: Transfer,
    /// UNIX seconds of first sight.
    pub(crate) seen_at: u64,
    /// Read from a payer's receipt, not yet found by the scanner.
    pub(crate) provisional: bool,
}

/// A stored transfer from a row of [`TRANSFER_COLUMNS`].
pub(crate) fn stored_from(r: &impl Cols) -> StoreResult<Stored> {
    Ok(Stored {
        transfer: Transfer {
            chain_id: r.u64(0)?,
            tx_hash: r.text(1)?,
            log_index: r.u64(2)?,
            block_number: r.u64(3)?,
            block_hash: r.text(4)?,
            to: r.text(5)?,
            from: r.text(6)?,
            value: r.amount(7)?,
        },
        seen_at: r.u64(8)?,
        provisional: r.flag(9)?,
    })
}

/// The delivery columns, in the order [`delivery_from`] reads them.
pub(crate) const DELIVERY_COLUMNS: &str =
    "id, payment_id, url, body, attempts, created_at, next_attempt_at, delivered_at, last_error";

/// A delivery from a row of [`DELIVERY_COLUMNS`].
pub(crate) fn delivery_from(r: &impl Cols) -> StoreResult<Delivery> {
    Ok(Delivery {
        id: r.text(0)?,
        payment_id: r.text(1)?,
        url: r.text(2)?,
        body: r.text(3)?,
        attempts: r.u32(4)?,
        created_at: r.u64(5)?,
        next_attempt_at: r.opt_u64(6)?,
        delivered_at: r.opt_u64(7)?,
        last_error: r.opt_text(8)?,
    })
}

/// The basket columns, in the order [`basket_from`] reads them.
pub(crate) const BASKET_COLUMNS: &str = "id, secret_hash, customer_id, shop_id, state, \
     revision, created_at, expires_at, contract_token, challenge, payment_id";

/// A basket (without its lines) from a row of [`BASKET_COLUMNS`].
pub(crate) fn basket_from(r: &impl Cols) -> StoreResult<Basket> {
    let state = r.text(4)?;
    Ok(Basket {
        id: r.text(0)?,
        secret_hash: r.opt_hash(1)?.unwrap_or_default(),
        customer_id: r.text(2)?,
        shop_id: r.text(3)?,
        state: BasketState::parse(&state)
            .ok_or_else(|| bad(4, format!("bad basket state {state:?}")))?,
        revision: r.u64(5)?,
        created_at: r.u64(6)?,
        expires_at: r.u64(7)?,
        contract_token: r.opt_text(8)?,
        challenge: r.opt_text(9)?,
        payment_id: r.opt_text(10)?,
        lines: Vec::new(),
    })
}

/// The `unlocks` patterns of a basket line, stored as a JSON array.
pub(crate) fn unlocks_of(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| bad(6, e.to_string()))
}

/// The hash of the transfer that completes `amount` in chain order (the order
/// [`evaluate`] uses; `stored` is already in it), else of the first transfer.
fn completing_tx_hash(amount: Amount, stored: &[Stored]) -> Option<String> {
    let mut running = 0u128;
    stored
        .iter()
        .find(|s| {
            running = running.saturating_add(s.transfer.value.0);
            running >= amount.0
        })
        .or_else(|| stored.first())
        .map(|s| s.transfer.tx_hash.clone())
}

/// What re-evaluating one payment decided: the payment to write back, the state
/// change to report (when its state moved), and the postback to queue (when it
/// just started to unlock and has a postback URL).
pub(crate) struct Reevaluated {
    /// The payment after re-evaluation (write it back).
    pub(crate) after: Payment,
    /// Reported to the caller when the state changed.
    pub(crate) change: Option<StateChange>,
    /// A postback to queue in the same transaction.
    pub(crate) postback: Option<Postback>,
}

/// Re-evaluates `before` over its transfers `stored` (in chain order: block, first
/// sight, log index) at `head`/`now`; `None` when nothing changed. `paid_at` is set
/// to `now` when a payment first unlocks and cleared when it stops unlocking.
pub(crate) fn reevaluated(
    before: &Payment,
    stored: &[Stored],
    head: u64,
    now: u64,
) -> Option<Reevaluated> {
    let credits: Vec<Credit> = stored
        .iter()
        .map(|s| Credit {
            value: s.transfer.value,
            block_number: s.transfer.block_number,
            seen_at: s.seen_at,
            provisional: s.provisional,
        })
        .collect();
    let terms = Terms {
        amount: before.amount,
        required_confirmations: before.required_confirmations,
        expires_at: before.expires_at,
    };
    let e = evaluate(terms, &credits, head, now);
    let after = Payment {
        state: e.state,
        received: e.received,
        seen_at: e.seen_at,
        confirmations: e.confirmations,
        tx_hash: completing_tx_hash(before.amount, stored),
        paid_at: if e.state.unlocks() {
            before.paid_at.or(Some(now))
        } else {
            None
        },
        ..before.clone()
    };
    if after == *before {
        return None;
    }
    let postback = if after.state.unlocks() && !before.state.unlocks() {
        postback(&after, now)
    } else {
        None
    };
    let change = (after.state != before.state).then(|| StateChange {
        payment: after.clone(),
        from: before.state,
    });
    Some(Reevaluated {
        after,
        change,
        postback,
    })
}

/// A postback to queue: one delivery per payment, ever (a reorg that takes it
/// back and a second payment keep the first delivery id).
pub(crate) struct Postback {
    /// Delivery id (`dlv_` + payment id).
    pub(crate) id: String,
    /// The payment.
    pub(crate) payment_id: String,
    /// Where it goes.
    pub(crate) url: String,
    /// The JSON body.
    pub(crate) body: String,
    /// UNIX seconds: queued and first due.
    pub(crate) now: u64,
}

/// The postback of a payment that just became paid, when it has a postback URL.
pub(crate) fn postback(p: &Payment, now: u64) -> Option<Postback> {
    let url = p.postback_url.as_ref()?;
    let data: serde_json::Value = p
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(serde_json::Value::Null);
    let body = serde_json::json!({
        "id": p.id,
        "data": data,
        "tx_hash": p.tx_hash,
        "amount": p.amount.to_decimal(8),
        "paid_at": p.paid_at,
    })
    .to_string();
    Some(Postback {
        id: format!("dlv_{}", p.id),
        payment_id: p.id.clone(),
        url: url.clone(),
        body,
        now,
    })
}

/// A Web Monetization credit decided: what to store for the incoming payment and
/// the outcome.
pub(crate) struct WmDecision {
    /// Units received (never lower than what was seen before).
    pub(crate) received: u128,
    /// Units consumed after this credit.
    pub(crate) consumed: u128,
    /// The outcome (record the unlock when `Unlocked`).
    pub(crate) outcome: WmCredit,
}

/// Decides a credit of `required` units on an incoming payment that had `seen`
/// received and `consumed` consumed, now reporting `received`.
pub(crate) fn wm_decide(seen: u128, consumed: u128, received: u128, required: u128) -> WmDecision {
    // What was seen never goes down (a stale read cannot take credit back).
    let received = received.max(seen);
    let available = received.saturating_sub(consumed);
    if required > 0 && available >= required {
        WmDecision {
            received,
            consumed: consumed.saturating_add(required),
            outcome: WmCredit::Unlocked {
                left: available - required,
            },
        }
    } else {
        WmDecision {
            received,
            consumed,
            outcome: WmCredit::Insufficient { available },
        }
    }
}

/// The statements both stores run as they are. Parameters are written `$1`, `$2`,
/// … and first appear in ascending order, so PostgreSQL reads them by number and
/// SQLite (for which `$1` is a named parameter, numbered by first appearance)
/// binds the same values in the same positions.
pub(crate) mod sql {
    /// A payment by id.
    pub(crate) fn payment_by_id() -> String {
        format!(
            "SELECT {} FROM payments WHERE id = $1",
            super::PAYMENT_COLUMNS
        )
    }

    /// A payment by contract hash.
    pub(crate) fn payment_by_hash() -> String {
        format!(
            "SELECT {} FROM payments WHERE contract_hash = $1",
            super::PAYMENT_COLUMNS
        )
    }

    /// Every payment, by derivation index.
    pub(crate) fn all_payments() -> String {
        format!(
            "SELECT {} FROM payments ORDER BY derivation_index",
            super::PAYMENT_COLUMNS
        )
    }

    /// A payment's transfers in chain order (block, first sight, log index).
    pub(crate) fn transfers_of() -> String {
        format!(
            "SELECT {} FROM transfers WHERE payment_id = $1 \
             ORDER BY block_number, seen_at, log_index, tx_hash",
            super::TRANSFER_COLUMNS
        )
    }

    /// Deliveries due at `$1`, at most `$2`.
    pub(crate) fn due_deliveries() -> String {
        format!(
            "SELECT {} FROM deliveries WHERE next_attempt_at IS NOT NULL \
             AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2",
            super::DELIVERY_COLUMNS
        )
    }

    /// The newest `$1` deliveries.
    pub(crate) fn deliveries() -> String {
        format!(
            "SELECT {} FROM deliveries ORDER BY created_at DESC, id LIMIT $1",
            super::DELIVERY_COLUMNS
        )
    }

    /// Inserts a transfer (`$1`..`$11`: chain, tx, log index, block, block hash,
    /// payment, to, from, value, seen at, provisional). From the scanner a log
    /// recorded provisionally becomes confirmed; a provisional record never
    /// overwrites anything.
    pub(crate) fn insert_transfer(provisional: bool) -> String {
        let on_conflict = if provisional {
            "DO NOTHING"
        } else {
            "DO UPDATE SET provisional = 0, block_number = excluded.block_number, \
             block_hash = excluded.block_hash WHERE transfers.provisional = 1"
        };
        format!(
            "INSERT INTO transfers (chain_id, tx_hash, log_index, block_number, \
             block_hash, payment_id, to_address, from_address, value, seen_at, provisional) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (chain_id, tx_hash, log_index) {on_conflict}"
        )
    }

    /// The payment owning a receiving address (`$1`, lowercase).
    pub(crate) const PAYMENT_BY_ADDRESS: &str = "SELECT id FROM payments WHERE address_lc = $1";

    /// The payments that are still open.
    ///
    /// Unpaid claims cost nothing here until they expire: a `new` payment (nothing
    /// received) can only change when a transfer to it is scanned (then it is
    /// re-evaluated as touched) or when it expires, so only those whose
    /// `expires_at` (`<= $1`, now) has come are read, a range of the
    /// `(state, expires_at)` index. A
    /// flood of claims does not grow what every tick reads.
    pub(crate) const OPEN_PAYMENTS: &str = "SELECT id FROM payments \
         WHERE state IN ('seen', 'confirming') OR (state = 'new' AND expires_at <= $1)";

    /// The payments with a transfer on chain `$1` above block `$2`.
    pub(crate) const PAID_ABOVE: &str =
        "SELECT DISTINCT payment_id FROM transfers WHERE chain_id = $1 AND block_number > $2";

    /// Writes back a re-evaluated payment (`$7` is its id).
    pub(crate) const UPDATE_PAYMENT: &str = "UPDATE payments SET state = $1, received = $2, \
         seen_at = $3, confirmations = $4, tx_hash = $5, paid_at = $6 WHERE id = $7";

    /// Queues a postback (id, payment, url, body, now); a payment keeps its first.
    pub(crate) const QUEUE_POSTBACK: &str =
        "INSERT INTO deliveries (id, payment_id, url, body, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (payment_id) DO NOTHING";

    /// Moves the checkpoint of chain `$1` to block `$2` with hash `$3`.
    pub(crate) const SET_CHECKPOINT: &str =
        "INSERT INTO checkpoints (chain_id, number, hash) VALUES ($1, $2, $3) \
         ON CONFLICT (chain_id) DO UPDATE SET number = excluded.number, hash = excluded.hash";

    /// Remembers block `$2` of chain `$1` with hash `$3`.
    pub(crate) const REMEMBER_BLOCK: &str =
        "INSERT INTO blocks (chain_id, number, hash) VALUES ($1, $2, $3) \
         ON CONFLICT (chain_id, number) DO UPDATE SET hash = excluded.hash";

    /// Forgets all but the newest `$2` remembered blocks of chain `$1`.
    pub(crate) const FORGET_OLD_BLOCKS: &str =
        "DELETE FROM blocks WHERE chain_id = $1 AND number < (SELECT min(number) FROM \
         (SELECT number FROM blocks WHERE chain_id = $1 ORDER BY number DESC LIMIT $2) AS k)";

    /// The owners of the provisional transfers on chain `$1` up to block `$2`.
    pub(crate) const STALE_PROVISIONAL: &str = "SELECT payment_id FROM transfers \
         WHERE chain_id = $1 AND provisional = 1 AND block_number <= $2";

    /// Drops the provisional transfers on chain `$1` up to block `$2`.
    pub(crate) const DROP_PROVISIONAL: &str =
        "DELETE FROM transfers WHERE chain_id = $1 AND provisional = 1 AND block_number <= $2";

    /// Drops the transfers on chain `$1` above block `$2`.
    pub(crate) const DROP_TRANSFERS_ABOVE: &str =
        "DELETE FROM transfers WHERE chain_id = $1 AND block_number > $2";

    /// Drops the remembered blocks of chain `$1` above `$2`.
    pub(crate) const DROP_BLOCKS_ABOVE: &str =
        "DELETE FROM blocks WHERE chain_id = $1 AND number > $2";

    /// The remembered hash of block `$2` on chain `$1`.
    pub(crate) const BLOCK_HASH: &str =
        "SELECT hash FROM blocks WHERE chain_id = $1 AND number = $2";

    /// The checkpoint of chain `$1`.
    pub(crate) const CHECKPOINT: &str = "SELECT number, hash FROM checkpoints WHERE chain_id = $1";

    /// The newest `$2` remembered blocks of chain `$1`.
    pub(crate) const RECENT_BLOCKS: &str =
        "SELECT number, hash FROM blocks WHERE chain_id = $1 ORDER BY number DESC LIMIT $2";

    /// A delivered attempt at `$1` of delivery `$2`.
    pub(crate) const DELIVERED: &str = "UPDATE deliveries SET attempts = attempts + 1, \
         delivered_at = $1, next_attempt_at = NULL, last_error = NULL WHERE id = $2";

    /// A failed attempt: next at `$1` (or never), error `$2`, delivery `$3`.
    pub(crate) const FAILED: &str = "UPDATE deliveries SET attempts = attempts + 1, \
         next_attempt_at = $1, last_error = $2 WHERE id = $3";

    /// Delivery `$2` due again at `$1`.
    pub(crate) const REDELIVER: &str = "UPDATE deliveries SET next_attempt_at = $1 WHERE id = $2";

    /// A basket by a `clause` on `$1` (`id = $1`, `secret_hash = $1`).
    pub(crate) fn basket_where(clause: &str) -> String {
        format!(
            "SELECT {} FROM baskets WHERE {clause}",
            super::BASKET_COLUMNS
        )
    }

    /// Creates an open basket (id, secret hash, customer, shop, created, expires).
    pub(crate) const CREATE_BASKET: &str = "INSERT INTO baskets (id, secret_hash, customer_id, \
         shop_id, state, created_at, expires_at) VALUES ($1, $2, $3, $4, 'open', $5, $6)";

    /// The lines of basket `$1`, in order.
    pub(crate) const LINES_OF: &str = "SELECT product_id, refund, count, refund_of, unlocks \
         FROM basket_lines WHERE basket_id = $1 ORDER BY position";

    /// Bumps the revision of basket `$1` when it is at revision `$2`, open and
    /// unexpired at `$3` (the compare-and-swap every basket write starts with).
    pub(crate) const CLAIM_REVISION: &str = "UPDATE baskets SET revision = revision + 1 \
         WHERE id = $1 AND revision = $2 AND state = 'open' AND expires_at >= $3";

    /// Drops the hold on product `$2` of payment `$1` left by a basket that expired
    /// (before `$3`) unpaid: it no longer counts.
    pub(crate) const DROP_STALE_HOLD: &str = "DELETE FROM refund_holds WHERE payment_id = $1 \
         AND product_id = $2 AND basket_id IN (SELECT b.id FROM baskets b \
           LEFT JOIN payments p ON p.id = b.payment_id \
           WHERE b.expires_at < $3 AND (p.state IS NULL OR p.state IN ('new', 'expired', 'underpaid')))";

    /// Takes the hold on product `$2` of payment `$1` for basket `$3` (when free).
    pub(crate) const TAKE_HOLD: &str = "INSERT INTO refund_holds (payment_id, product_id, \
         basket_id) VALUES ($1, $2, $3) ON CONFLICT (payment_id, product_id) DO NOTHING";

    /// The basket holding product `$2` of payment `$1`.
    pub(crate) const HOLDER: &str =
        "SELECT basket_id FROM refund_holds WHERE payment_id = $1 AND product_id = $2";

    /// Sets a line of basket `$1` (product, refund, count, refund of, unlocks),
    /// appended when new.
    pub(crate) const PUT_LINE: &str = "INSERT INTO basket_lines (basket_id, position, \
         product_id, refund, count, refund_of, unlocks) VALUES ($1, (SELECT \
         COALESCE(MAX(position), -1) + 1 FROM basket_lines WHERE basket_id = $1), $2, $3, $4, \
         $5, $6) ON CONFLICT (basket_id, product_id, refund) DO UPDATE SET \
         count = excluded.count, refund_of = excluded.refund_of, unlocks = excluded.unlocks";

    /// Locks basket `$4` at revision `$5` for checkout (token `$1`, challenge `$2`,
    /// expiry raised to `$3`).
    pub(crate) const LOCK_BASKET: &str = "UPDATE baskets SET state = 'checked_out', \
         revision = revision + 1, contract_token = $1, challenge = $2, \
         expires_at = CASE WHEN expires_at > $3 THEN expires_at ELSE $3 END \
         WHERE id = $4 AND revision = $5 AND state = 'open'";

    /// Records payment `$1` as basket `$2`'s checkout.
    pub(crate) const SET_BASKET_PAYMENT: &str = "UPDATE baskets SET payment_id = $1 WHERE id = $2";

    /// Drops the refund holds of basket `$1` unless its payment unlocks.
    pub(crate) const RELEASE_HOLDS: &str = "DELETE FROM refund_holds WHERE basket_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM baskets b JOIN payments p ON p.id = b.payment_id \
         WHERE b.id = $1 AND p.state IN ('paid', 'paid_late'))";

    /// Marks basket `$1` released.
    pub(crate) const RELEASE_BASKET: &str = "UPDATE baskets SET state = 'released', \
         revision = revision + 1 WHERE id = $1 AND state != 'released'";

    /// The baskets expired at `$1` whose payment is not paid or on its way.
    pub(crate) const EXPIRED_BASKETS: &str = "SELECT b.id FROM baskets b \
         LEFT JOIN payments p ON p.id = b.payment_id \
         WHERE b.state != 'released' AND b.expires_at < $1 \
         AND (p.state IS NULL OR p.state IN ('new', 'expired', 'underpaid'))";

    /// What the basket paid by `$1` bought, each with 1 when its refund is final.
    pub(crate) const PURCHASES: &str = "SELECT l.product_id, l.count, l.unlocks, \
         CASE WHEN EXISTS (SELECT 1 FROM refund_holds h JOIN baskets rb ON rb.id = h.basket_id \
           JOIN payments rp ON rp.id = rb.payment_id \
           WHERE h.payment_id = $1 AND h.product_id = l.product_id \
           AND rp.state IN ('paid', 'paid_late')) THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END \
         FROM baskets b JOIN basket_lines l ON l.basket_id = b.id \
         WHERE b.payment_id = $1 AND l.refund = 0 ORDER BY l.position";

    /// The contract hashes of the payments the basket paid by `$1` refunds.
    pub(crate) const REFUNDED_BY: &str = "SELECT DISTINCT p.contract_hash FROM baskets b \
         JOIN refund_holds h ON h.basket_id = b.id JOIN payments p ON p.id = h.payment_id \
         WHERE b.payment_id = $1 AND p.contract_hash IS NOT NULL";

    /// Records a Web Monetization unlock (id, hash, incoming url, scope, amount,
    /// created, ttl).
    pub(crate) const WM_UNLOCK_INSERT: &str = "INSERT INTO wm_unlocks (id, hash, incoming_url, \
         scope, amount, created_at, access_ttl_secs) VALUES ($1, $2, $3, $4, $5, $6, $7)";

    /// The Web Monetization unlock with receipt hash `$1`.
    pub(crate) const WM_UNLOCK: &str = "SELECT id, scope, created_at, access_ttl_secs, \
         incoming_url FROM wm_unlocks WHERE hash = $1";
}
