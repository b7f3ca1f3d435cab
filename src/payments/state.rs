//! The payment state machine (pure): what state a payment is in, given its amount,
//! the transfers credited to it, the chain head and the clock.
//!
//! `new → seen → confirming → paid`, or `expired`, `paid_late`, `underpaid`.
//! Confirmations are always recomputed from the canonical chain (invariant 5): a
//! reorg that removes transfers moves a payment back.

use serde::{Deserialize, Serialize};

use crate::amount::Amount;

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// Nothing seen on chain.
    New,
    /// Transfers seen, but less than the amount.
    Seen,
    /// The amount was seen, waiting for confirmations.
    Confirming,
    /// The amount reached the required depth before expiry.
    Paid,
    /// Expired with nothing received.
    Expired,
    /// The amount was completed only after expiry (recorded, never dropped).
    PaidLate,
    /// Expired with less than the amount received.
    Underpaid,
    /// Refunded by the merchant.
    Refunded,
}

impl PaymentState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::New => "new",
            PaymentState::Seen => "seen",
            PaymentState::Confirming => "confirming",
            PaymentState::Paid => "paid",
            PaymentState::Expired => "expired",
            PaymentState::PaidLate => "paid_late",
            PaymentState::Underpaid => "underpaid",
            PaymentState::Refunded => "refunded",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<PaymentState> {
        Some(match s {
            "new" => PaymentState::New,
            "seen" => PaymentState::Seen,
            "confirming" => PaymentState::Confirming,
            "paid" => PaymentState::Paid,
            "expired" => PaymentState::Expired,
            "paid_late" => PaymentState::PaidLate,
            "underpaid" => PaymentState::Underpaid,
            "refunded" => PaymentState::Refunded,
            _ => return None,
        })
    }

    /// True for the states that unlock content (a receipt may be issued).
    pub fn unlocks(self) -> bool {
        matches!(self, PaymentState::Paid | PaymentState::PaidLate)
    }
}

/// One transfer credited to a payment, as the state machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credit {
    /// Value in base units.
    pub value: Amount,
    /// Block it was mined in.
    pub block_number: u64,
    /// When tollgate first saw it (UNIX seconds).
    pub seen_at: u64,
    /// Recorded from a transaction hash a payer gave (a basket challenge answer)
    /// before the scanner read its block: it counts as seen, never as confirmed,
    /// until the scanner finds the same log on the canonical chain.
    pub provisional: bool,
}

/// The inputs of [`evaluate`] that describe the payment itself.
#[derive(Debug, Clone, Copy)]
pub struct Terms {
    /// Amount due.
    pub amount: Amount,
    /// Confirmations required (0 = unlock on first sight).
    pub required_confirmations: u64,
    /// UNIX seconds after which the payment is late.
    pub expires_at: u64,
}

/// The computed view of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    /// The state.
    pub state: PaymentState,
    /// Total received (all credited transfers).
    pub received: Amount,
    /// First time any transfer was seen.
    pub seen_at: Option<u64>,
    /// Confirmations of the transfer that completed the amount (0 when incomplete).
    pub confirmations: u64,
}

/// Evaluates a payment from its credits at chain `head` and time `now`.
pub fn evaluate(terms: Terms, credits: &[Credit], head: u64, now: u64) -> Evaluation {
    if terms.amount.is_zero() {
        // Nothing is due (a basket whose refunds cover its purchases): paid at once.
        return Evaluation {
            state: PaymentState::Paid,
            received: Amount(
                credits
                    .iter()
                    .fold(0u128, |a, c| a.saturating_add(c.value.0)),
            ),
            seen_at: credits.iter().map(|c| c.seen_at).min(),
            confirmations: 0,
        };
    }
    let mut sorted: Vec<Credit> = credits.to_vec();
    sorted.sort_by_key(|c| (c.block_number, c.seen_at));
    let received = Amount(
        sorted
            .iter()
            .fold(0u128, |a, c| a.saturating_add(c.value.0)),
    );
    let seen_at = sorted.iter().map(|c| c.seen_at).min();
    // The transfer that completes the amount, in chain order.
    let mut running = 0u128;
    let completing = sorted.iter().find(|c| {
        running = running.saturating_add(c.value.0);
        running >= terms.amount.0
    });
    let expired = now > terms.expires_at;
    let (state, confirmations) = match completing {
        Some(c) => {
            let confs = head.saturating_add(1).saturating_sub(c.block_number);
            // Completed late when the completing transfer was first seen after expiry.
            let late = c.seen_at > terms.expires_at;
            // Nothing provisional in the amount is ever deep: the scanner decides.
            let provisional = sorted
                .iter()
                .take_while(|x| !std::ptr::eq(*x, c))
                .chain(std::iter::once(c))
                .any(|x| x.provisional);
            let deep = !provisional
                && (confs >= terms.required_confirmations.max(1)
                    || terms.required_confirmations == 0);
            match (deep, late) {
                (true, false) => (PaymentState::Paid, confs),
                (true, true) => (PaymentState::PaidLate, confs),
                (false, _) => (PaymentState::Confirming, confs),
            }
        }
        None if received.0 > 0 && expired => (PaymentState::Underpaid, 0),
        None if received.0 > 0 => (PaymentState::Seen, 0),
        None if expired => (PaymentState::Expired, 0),
        None => (PaymentState::New, 0),
    };
    Evaluation {
        state,
        received,
        seen_at,
        confirmations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Terms = Terms {
        amount: Amount(100),
        required_confirmations: 3,
        expires_at: 1000,
    };

    fn c(value: u128, block: u64, seen_at: u64) -> Credit {
        Credit {
            value: Amount(value),
            block_number: block,
            seen_at,
            provisional: false,
        }
    }

    #[test]
    fn provisional_credits_are_seen_never_confirmed() {
        let p = Credit {
            provisional: true,
            ..c(100, 10, 5)
        };
        let t0 = Terms {
            required_confirmations: 0,
            ..T
        };
        for t in [T, t0] {
            let e = evaluate(t, &[p], 100, 5);
            assert_eq!(
                (e.state, e.received),
                (PaymentState::Confirming, Amount(100))
            );
        }
        // Once the scanner confirmed it (not provisional), it counts.
        assert_eq!(
            evaluate(t0, &[c(100, 10, 5)], 100, 5).state,
            PaymentState::Paid
        );
    }

    #[test]
    fn nothing_due_is_paid_at_once() {
        let t = Terms {
            amount: Amount(0),
            ..T
        };
        assert_eq!(evaluate(t, &[], 0, 5000).state, PaymentState::Paid);
    }

    #[test]
    fn moves_new_seen_confirming_paid() {
        assert_eq!(evaluate(T, &[], 10, 500).state, PaymentState::New);
        assert_eq!(
            evaluate(T, &[c(40, 10, 500)], 10, 500).state,
            PaymentState::Seen
        );
        let both = [c(40, 10, 500), c(60, 11, 510)];
        let e = evaluate(T, &both, 11, 510);
        assert_eq!(
            (e.state, e.confirmations, e.received),
            (PaymentState::Confirming, 1, Amount(100))
        );
        assert_eq!(evaluate(T, &both, 12, 520).state, PaymentState::Confirming);
        let e = evaluate(T, &both, 13, 530);
        assert_eq!((e.state, e.confirmations), (PaymentState::Paid, 3));
        assert_eq!(e.seen_at, Some(500));
    }

    #[test]
    fn expiry_late_and_underpaid() {
        assert_eq!(evaluate(T, &[], 10, 1001).state, PaymentState::Expired);
        assert_eq!(
            evaluate(T, &[c(99, 10, 900)], 20, 1001).state,
            PaymentState::Underpaid
        );
        // Completed after expiry: recorded as paid_late once deep enough.
        let late = [c(99, 10, 900), c(1, 30, 1100)];
        assert_eq!(evaluate(T, &late, 31, 1101).state, PaymentState::Confirming);
        assert_eq!(evaluate(T, &late, 32, 1102).state, PaymentState::PaidLate);
        // Completed before expiry, confirmed after: still paid.
        assert_eq!(
            evaluate(T, &[c(100, 10, 999)], 20, 2000).state,
            PaymentState::Paid
        );
    }

    #[test]
    fn zero_confirmations_unlock_on_first_sight() {
        let t = Terms {
            required_confirmations: 0,
            ..T
        };
        assert_eq!(
            evaluate(t, &[c(100, 10, 5)], 10, 5).state,
            PaymentState::Paid
        );
    }

    #[test]
    fn overpayment_is_paid() {
        assert_eq!(
            evaluate(T, &[c(1000, 10, 5)], 12, 5).state,
            PaymentState::Paid
        );
    }
}
