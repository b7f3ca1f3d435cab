//! [`BasketStore`] on SQLite: baskets, their lines and refund holds (migration 3).

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::columns::{mapped, user, Db, DbHash, U64};
use super::SqliteStore;
use crate::store::basket::{Basket, BasketLine, BasketStore, BasketWrite, NewBasket, Purchase};
use crate::store::shared::{basket_from, sql, unlocks_of};
use crate::store::{StoreError, StoreResult};

fn lines_of(c: &Connection, id: &str) -> StoreResult<Vec<BasketLine>> {
    let mut stmt = c.prepare_cached(sql::LINES_OF).db()?;
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
        .prepare_cached(&sql::basket_where(clause))
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
        .prepare_cached(sql::CLAIM_REVISION)
        .db()?
        .execute(params![id, U64(revision), U64(now)])
        .db()?;
    Ok(n == 1)
}

/// Drops the refund holds of a basket whose payment does not unlock, and marks it
/// released.
fn release(c: &Connection, id: &str) -> StoreResult<()> {
    c.prepare_cached(sql::RELEASE_HOLDS)
        .db()?
        .execute(params![id])
        .db()?;
    c.prepare_cached(sql::RELEASE_BASKET)
        .db()?
        .execute(params![id])
        .db()?;
    Ok(())
}

#[async_trait]
impl BasketStore for SqliteStore {
    async fn create_basket(&self, new: NewBasket) -> StoreResult<()> {
        self.write(move |c| {
            c.prepare_cached(sql::CREATE_BASKET)
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
        self.run(move |c| basket_where(c, "id = $1", &id)).await
    }

    async fn basket_by_secret(&self, secret_hash: &[u8; 32]) -> StoreResult<Option<Basket>> {
        let h = secret_hash.to_vec();
        self.run(move |c| basket_where(c, "secret_hash = $1", &h))
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
                c.prepare_cached(sql::DROP_STALE_HOLD)
                    .db()?
                    .execute(params![of, line.product_id, U64(now)])
                    .db()?;
                let held = c
                    .prepare_cached(sql::TAKE_HOLD)
                    .db()?
                    .execute(params![of, line.product_id, id])
                    .db()?;
                if held == 0 {
                    let mine: Option<String> = c
                        .query_row(sql::HOLDER, params![of, line.product_id], |r| r.get(0))
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
            c.prepare_cached(sql::PUT_LINE)
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
                .prepare_cached(sql::LOCK_BASKET)
                .db()?
                .execute(params![
                    token,
                    challenge,
                    U64(expires_at),
                    id,
                    U64(revision)
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
            c.prepare_cached(sql::SET_BASKET_PAYMENT)
                .db()?
                .execute(params![pid, id])
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
                let mut stmt = c.prepare_cached(sql::EXPIRED_BASKETS).db()?;
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
            let mut stmt = c.prepare_cached(sql::PURCHASES).db()?;
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
            let mut stmt = c.prepare_cached(sql::REFUNDED_BY).db()?;
            let rows = stmt
                .query_map(params![pid], |r| r.get::<_, DbHash>(0))
                .db()?;
            let hashes = rows.collect::<rusqlite::Result<Vec<_>>>().db()?;
            Ok(hashes.into_iter().filter_map(|h| h.0).collect())
        })
        .await
    }
}
