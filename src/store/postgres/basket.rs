//! [`BasketStore`] on PostgreSQL: baskets, their lines and refund holds
//! (migration 3), with the same rules as the SQLite store.

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::types::ToSql;

use super::{begin, chain_lock, exec, n, pg, query, rows, PostgresStore};
use crate::store::basket::Basket;
use crate::store::basket::{BasketLine, BasketStore, BasketWrite, NewBasket, Purchase};
use crate::store::shared::{basket_from, sql, unlocks_of, Cols};
use crate::store::{StoreError, StoreResult};

async fn lines_of(c: &impl GenericClient, id: &str) -> StoreResult<Vec<BasketLine>> {
    let r = query(c, sql::LINES_OF, &[&id]).await?;
    rows(r, |r| {
        Ok(BasketLine {
            product_id: r.text(0)?,
            refund: r.flag(1)?,
            count: r.u32(2)?,
            refund_of: r.opt_text(3)?,
            unlocks: unlocks_of(&r.text(4)?)?,
        })
    })
}

async fn basket_where(
    c: &impl GenericClient,
    clause: &str,
    key: &(dyn ToSql + Sync),
) -> StoreResult<Option<Basket>> {
    let r = query(c, &sql::basket_where(clause), &[key]).await?;
    match r.first().map(basket_from).transpose()? {
        Some(mut b) => {
            b.lines = lines_of(c, &b.id).await?;
            Ok(Some(b))
        }
        None => Ok(None),
    }
}

/// Drops the refund holds of a basket whose payment does not unlock, and marks it
/// released.
async fn release(tx: &Transaction<'_>, id: &str) -> StoreResult<()> {
    exec(tx, sql::RELEASE_HOLDS, &[&id]).await?;
    exec(tx, sql::RELEASE_BASKET, &[&id]).await?;
    Ok(())
}

#[async_trait]
impl BasketStore for PostgresStore {
    /// One statement (its own `READ COMMITTED` transaction); ids and secret hashes
    /// are unique constraints.
    async fn create_basket(&self, new: NewBasket) -> StoreResult<()> {
        let c = self.client().await?;
        exec(
            &c,
            sql::CREATE_BASKET,
            &[
                &new.id,
                &&new.secret_hash[..],
                &new.customer_id,
                &new.shop_id,
                &n(new.created_at)?,
                &n(new.expires_at)?,
            ],
        )
        .await?;
        Ok(())
    }

    async fn basket(&self, id: &str) -> StoreResult<Option<Basket>> {
        let c = self.client().await?;
        basket_where(&c, "id = $1", &id).await
    }

    async fn basket_by_secret(&self, secret_hash: &[u8; 32]) -> StoreResult<Option<Basket>> {
        let c = self.client().await?;
        basket_where(&c, "secret_hash = $1", &&secret_hash[..]).await
    }

    /// One `READ COMMITTED` transaction: the revision compare-and-swap `UPDATE`
    /// holds the basket's row lock to the commit; the refund hold is a primary key
    /// (`ON CONFLICT DO NOTHING` waits for a concurrent holder's outcome).
    async fn put_line(
        &self,
        id: &str,
        revision: u64,
        line: BasketLine,
        now: u64,
    ) -> StoreResult<BasketWrite> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let now = n(now)?;
        let bumped = exec(&tx, sql::CLAIM_REVISION, &[&id, &n(revision)?, &now]).await?;
        if bumped != 1 {
            return Ok(BasketWrite::Stale);
        }
        if let Some(of) = &line.refund_of {
            // A hold left by a basket that expired unpaid no longer counts.
            exec(&tx, sql::DROP_STALE_HOLD, &[of, &line.product_id, &now]).await?;
            let held = exec(&tx, sql::TAKE_HOLD, &[of, &line.product_id, &id]).await?;
            if held == 0 {
                let mine = query(&tx, sql::HOLDER, &[of, &line.product_id]).await?;
                let mine = mine.first().map(|r| r.text(0)).transpose()?;
                if mine.as_deref() != Some(id) {
                    // The revision bump rolls back with the rest.
                    return Ok(BasketWrite::RefundTaken);
                }
            }
        }
        let unlocks = serde_json::to_string(&line.unlocks)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        exec(
            &tx,
            sql::PUT_LINE,
            &[
                &id,
                &line.product_id,
                &i64::from(line.refund),
                &i64::from(line.count),
                &line.refund_of,
                &unlocks,
            ],
        )
        .await?;
        tx.commit().await.map_err(pg)?;
        Ok(BasketWrite::Done)
    }

    /// One statement: the revision compare-and-swap.
    async fn lock_basket(
        &self,
        id: &str,
        revision: u64,
        contract_token: &str,
        challenge: &str,
        expires_at: u64,
    ) -> StoreResult<BasketWrite> {
        let c = self.client().await?;
        let changed = exec(
            &c,
            sql::LOCK_BASKET,
            &[
                &contract_token,
                &challenge,
                &n(expires_at)?,
                &id,
                &n(revision)?,
            ],
        )
        .await?;
        Ok(if changed == 1 {
            BasketWrite::Done
        } else {
            BasketWrite::Stale
        })
    }

    /// One statement (its own `READ COMMITTED` transaction); a payment pays one
    /// basket (unique constraint).
    async fn set_basket_payment(&self, id: &str, payment_id: &str) -> StoreResult<()> {
        let c = self.client().await?;
        exec(&c, sql::SET_BASKET_PAYMENT, &[&payment_id, &id]).await?;
        Ok(())
    }

    /// One `READ COMMITTED` transaction under the chain lock (payment states cannot
    /// move while it decides which holds stay).
    async fn release_basket(&self, id: &str) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        chain_lock(&tx).await?;
        release(&tx, id).await?;
        tx.commit().await.map_err(pg)
    }

    /// One `READ COMMITTED` transaction under the chain lock.
    async fn release_expired_baskets(&self, now: u64) -> StoreResult<u64> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        chain_lock(&tx).await?;
        let ids = query(&tx, sql::EXPIRED_BASKETS, &[&n(now)?]).await?;
        let ids = rows(ids, |r| r.text(0))?;
        for id in &ids {
            release(&tx, id).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(ids.len() as u64)
    }

    async fn purchases(&self, payment_id: &str) -> StoreResult<Vec<Purchase>> {
        let c = self.client().await?;
        let r = query(&c, sql::PURCHASES, &[&payment_id]).await?;
        rows(r, |r| {
            Ok(Purchase {
                product_id: r.text(0)?,
                count: r.u32(1)?,
                unlocks: unlocks_of(&r.text(2)?)?,
                refunded: r.flag(3)?,
            })
        })
    }

    async fn refunded_by(&self, payment_id: &str) -> StoreResult<Vec<[u8; 32]>> {
        let c = self.client().await?;
        let r = query(&c, sql::REFUNDED_BY, &[&payment_id]).await?;
        Ok(rows(r, |r| r.opt_hash(0))?.into_iter().flatten().collect())
    }
}
