//! [`BasketStore`] on SQLite: baskets, their lines and refund holds (migration 3).

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::columns::{mapped, user, Db, DbHash, U64};
use super::SqliteStore;
use crate::store::basket::{Basket, BasketLine, BasketStore, BasketWrite, NewBasket, Purchase};
use crate::store::shared::{basket_from, unlocks_of, BASKET_COLUMNS};
use crate::store::{StoreError, StoreResult};

/// The states in which a payment unlocks (a basket paid by it is complete).
const UNLOCKS: &str = "('paid', 'paid_late')";

/// The payment states in which an expired basket may be released: nothing is on its
/// way (a payment seen or confirming may still complete, so its basket stays).
const IDLE: &str = "('new', 'expired', 'underpaid')";

fn lines_of(c: &Connection, id: &str) -> StoreResult<Vec<BasketLine>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT product_id, refund, count, refund_of, unlocks FROM basket_lines \
             WHERE basket_id = ?1 ORDER BY position",
        )
        .db()?;
    let rows = stmt
        .query_map(params![id], |r| {
            Ok(BasketLine {
                product_id: r.get(0)?,
                refund: r.get::<_, i64>(1)? != 0,
                count: r.get(2)?,
                refund_of: r.get(3)?,
                unlocks: unlocks_of(&r.get::<_, String>(4)?).map_err(user)?,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

fn basket_where(
    c: &Connection,
    clause: &str,
    key: &dyn rusqlite::ToSql,
) -> StoreResult<Option<Basket>> {
    let b = c
        .prepare_cached(&format!(
            "SELECT {BASKET_COLUMNS} FROM baskets WHERE {clause}"
        ))
        .db()?
        .query_row([key], mapped!(basket_from))
        .optional()
        .db()?;
    match b {
        Some(mut b) => {
            b.lines = lines_of(c, &b.id)?;
            Ok(Some(b))
        }
        None => Ok(None),
    }
}

/// True when basket `id` is open, unexpired at `now` and at `revision`; bumps the
/// revision when so (the caller then writes in the same transaction).
fn claim_revision(c: &Connection, id: &str, revision: u64, now: u64) -> StoreResult<bool> {
    let n = c
        .prepare_cached(
            "UPDATE baskets SET revision = revision + 1 \
             WHERE id = ?1 AND revision = ?2 AND state = 'open' AND expires_at >= ?3",
        )
        .db()?
        .execute(params![id, U64(revision), U64(now)])
        .db()?;
    Ok(n == 1)
}

/// Drops the refund holds of a basket whose payment does not unlock, and marks it
/// released.
fn release(c: &Connection, id: &str) -> StoreResult<()> {
    c.prepare_cached(&format!(
        "DELETE FROM refund_holds WHERE basket_id = ?1 AND NOT EXISTS ( \
           SELECT 1 FROM baskets b JOIN payments p ON p.id = b.payment_id \
           WHERE b.id = ?1 AND p.state IN {UNLOCKS})"
    ))
    .db()?
    .execute(params![id])
    .db()?;
    c.prepare_cached("UPDATE baskets SET state = 'released', revision = revision + 1 WHERE id = ?1 AND state != 'released'")
        .db()?
        .execute(params![id])
        .db()?;
    Ok(())
}

#[async_trait]
impl BasketStore for SqliteStore {
    async fn create_basket(&self, new: NewBasket) -> StoreResult<()> {
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO baskets (id, secret_hash, customer_id, shop_id, state, created_at, \
                 expires_at) VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6)",
            )
            .db()?
            .execute(params![
                new.id,
                &new.secret_hash[..],
                new.customer_id,
                new.shop_id,
                U64(new.created_at),
                U64(new.expires_at),
            ])
            .db()?;
            Ok(())
        })
        .await
    }

    async fn basket(&self, id: &str) -> StoreResult<Option<Basket>> {
        let id = id.to_string();
        self.run(move |c| basket_where(c, "id = ?1", &id)).await
    }

    async fn basket_by_secret(&self, secret_hash: &[u8; 32]) -> StoreResult<Option<Basket>> {
        let h = secret_hash.to_vec();
        self.run(move |c| basket_where(c, "secret_hash = ?1", &h))
            .await
    }

    async fn put_line(
        &self,
        id: &str,
        revision: u64,
        line: BasketLine,
        now: u64,
    ) -> StoreResult<BasketWrite> {
        let id = id.to_string();
        self.write(move |c| {
            if !claim_revision(c, &id, revision, now)? {
                return Ok(BasketWrite::Stale);
            }
            if let Some(of) = &line.refund_of {
                // A hold left by a basket that expired unpaid no longer counts.
                c.prepare_cached(&format!(
                    "DELETE FROM refund_holds WHERE payment_id = ?1 AND product_id = ?2 \
                     AND basket_id IN (SELECT b.id FROM baskets b \
                       LEFT JOIN payments p ON p.id = b.payment_id \
                       WHERE b.expires_at < ?3 AND (p.state IS NULL OR p.state IN {IDLE}))"
                ))
                .db()?
                .execute(params![of, line.product_id, U64(now)])
                .db()?;
                let held = c
                    .prepare_cached(
                        "INSERT INTO refund_holds (payment_id, product_id, basket_id) \
                         VALUES (?1, ?2, ?3) ON CONFLICT (payment_id, product_id) DO NOTHING",
                    )
                    .db()?
                    .execute(params![of, line.product_id, id])
                    .db()?;
                if held == 0 {
                    let mine: Option<String> = c
                        .query_row(
                            "SELECT basket_id FROM refund_holds WHERE payment_id = ?1 AND product_id = ?2",
                            params![of, line.product_id],
                            |r| r.get(0),
                        )
                        .optional()
                        .db()?;
                    if mine.as_deref() != Some(id.as_str()) {
                        // Roll back the revision bump with the rest.
                        return Err(StoreError::Conflict("refund_taken".into()));
                    }
                }
            }
            let unlocks = serde_json::to_string(&line.unlocks)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            c.prepare_cached(
                "INSERT INTO basket_lines (basket_id, position, product_id, refund, count, \
                 refund_of, unlocks) VALUES (?1, (SELECT COALESCE(MAX(position), -1) + 1 \
                 FROM basket_lines WHERE basket_id = ?1), ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (basket_id, product_id, refund) DO UPDATE SET \
                 count = excluded.count, refund_of = excluded.refund_of, unlocks = excluded.unlocks",
            )
            .db()?
            .execute(params![
                id,
                line.product_id,
                i64::from(line.refund),
                line.count,
                line.refund_of,
                unlocks
            ])
            .db()?;
            Ok(BasketWrite::Done)
        })
        .await
        .or_else(|e| match e {
            StoreError::Conflict(m) if m == "refund_taken" => Ok(BasketWrite::RefundTaken),
            e => Err(e),
        })
    }

    async fn lock_basket(
        &self,
        id: &str,
        revision: u64,
        contract_token: &str,
        challenge: &str,
        expires_at: u64,
    ) -> StoreResult<BasketWrite> {
        let (id, token, challenge) = (
            id.to_string(),
            contract_token.to_string(),
            challenge.to_string(),
        );
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE baskets SET state = 'checked_out', revision = revision + 1, \
                     contract_token = ?3, challenge = ?4, expires_at = MAX(expires_at, ?5) \
                     WHERE id = ?1 AND revision = ?2 AND state = 'open'",
                )
                .db()?
                .execute(params![
                    id,
                    U64(revision),
                    token,
                    challenge,
                    U64(expires_at)
                ])
                .db()?;
            Ok(if n == 1 {
                BasketWrite::Done
            } else {
                BasketWrite::Stale
            })
        })
        .await
    }

    async fn set_basket_payment(&self, id: &str, payment_id: &str) -> StoreResult<()> {
        let (id, pid) = (id.to_string(), payment_id.to_string());
        self.write(move |c| {
            c.prepare_cached("UPDATE baskets SET payment_id = ?2 WHERE id = ?1")
                .db()?
                .execute(params![id, pid])
                .db()?;
            Ok(())
        })
        .await
    }

    async fn release_basket(&self, id: &str) -> StoreResult<()> {
        let id = id.to_string();
        self.write(move |c| release(c, &id)).await
    }

    async fn release_expired_baskets(&self, now: u64) -> StoreResult<u64> {
        self.write(move |c| {
            let ids: Vec<String> = {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT b.id FROM baskets b LEFT JOIN payments p ON p.id = b.payment_id \
                         WHERE b.state != 'released' AND b.expires_at < ?1 \
                         AND (p.state IS NULL OR p.state IN {IDLE})"
                    ))
                    .db()?;
                let rows = stmt.query_map(params![U64(now)], |r| r.get(0)).db()?;
                rows.collect::<rusqlite::Result<Vec<_>>>().db()?
            };
            for id in &ids {
                release(c, id)?;
            }
            Ok(ids.len() as u64)
        })
        .await
    }

    async fn purchases(&self, payment_id: &str) -> StoreResult<Vec<Purchase>> {
        let pid = payment_id.to_string();
        self.run(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT l.product_id, l.count, l.unlocks, EXISTS ( \
                       SELECT 1 FROM refund_holds h JOIN baskets rb ON rb.id = h.basket_id \
                       JOIN payments rp ON rp.id = rb.payment_id \
                       WHERE h.payment_id = ?1 AND h.product_id = l.product_id \
                       AND rp.state IN {UNLOCKS}) \
                     FROM baskets b JOIN basket_lines l ON l.basket_id = b.id \
                     WHERE b.payment_id = ?1 AND l.refund = 0 ORDER BY l.position"
                ))
                .db()?;
            let rows = stmt
                .query_map(params![pid], |r| {
                    Ok(Purchase {
                        product_id: r.get(0)?,
                        count: r.get(1)?,
                        unlocks: unlocks_of(&r.get::<_, String>(2)?).map_err(user)?,
                        refunded: r.get::<_, i64>(3)? != 0,
                    })
                })
                .db()?;
            rows.collect::<rusqlite::Result<Vec<_>>>().db()
        })
        .await
    }

    async fn refunded_by(&self, payment_id: &str) -> StoreResult<Vec<[u8; 32]>> {
        let pid = payment_id.to_string();
        self.run(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT DISTINCT p.contract_hash FROM baskets b \
                     JOIN refund_holds h ON h.basket_id = b.id \
                     JOIN payments p ON p.id = h.payment_id \
                     WHERE b.payment_id = ?1 AND p.contract_hash IS NOT NULL",
                )
                .db()?;
            let rows = stmt
                .query_map(params![pid], |r| r.get::<_, DbHash>(0))
                .db()?;
            let hashes = rows.collect::<rusqlite::Result<Vec<_>>>().db()?;
            Ok(hashes.into_iter().filter_map(|h| h.0).collect())
        })
        .await
    }
}
