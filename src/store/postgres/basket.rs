//! [`BasketStore`] on PostgreSQL: baskets, their lines and refund holds
//! (migration 3), with the same rules as the SQLite store.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Transaction};

use super::{begin, chain_lock, exec, n, pg, query, rows, PostgresStore};
use crate::store::basket::Basket;
use crate::store::basket::{BasketLine, BasketStore, BasketWrite, NewBasket, Purchase};
use crate::store::shared::{basket_from, unlocks_of, Cols, BASKET_COLUMNS};
use crate::store::{StoreError, StoreResult};

/// The states in which a payment unlocks (a basket paid by it is complete).
const UNLOCKS: &str = "('paid', 'paid_late')";

/// The payment states in which an expired basket may be released.
const IDLE: &str = "('new', 'expired', 'underpaid')";

async fn lines_of(c: &impl GenericClient, id: &str) -> StoreResult<Vec<BasketLine>> {
    let r = query(
        c,
        "SELECT product_id, refund, count, refund_of, unlocks FROM basket_lines \
         WHERE basket_id = $1 ORDER BY position",
        &[&id],
    )
    .await?;
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
    let r = query(
        c,
        &format!("SELECT {BASKET_COLUMNS} FROM baskets WHERE {clause}"),
        &[key],
    )
    .await?;
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
    exec(
        tx,
        &format!(
            "DELETE FROM refund_holds WHERE basket_id = $1 AND NOT EXISTS ( \
               SELECT 1 FROM baskets b JOIN payments p ON p.id = b.payment_id \
               WHERE b.id = $1 AND p.state IN {UNLOCKS})"
        ),
        &[&id],
    )
    .await?;
    exec(
        tx,
        "UPDATE baskets SET state = 'released', revision = revision + 1 \
         WHERE id = $1 AND state != 'released'",
        &[&id],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl BasketStore for PostgresStore {
    async fn create_basket(&self, new: NewBasket) -> StoreResult<()> {
        let c = self.client().await?;
        exec(
            &**c,
            "INSERT INTO baskets (id, secret_hash, customer_id, shop_id, state, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, 'open', $5, $6)",
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
        basket_where(&**c, "id = $1", &id).await
    }

    async fn basket_by_secret(&self, secret_hash: &[u8; 32]) -> StoreResult<Option<Basket>> {
        let c = self.client().await?;
        basket_where(&**c, "secret_hash = $1", &&secret_hash[..]).await
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
        let bumped = exec(
            &tx,
            "UPDATE baskets SET revision = revision + 1 \
             WHERE id = $1 AND revision = $2 AND state = 'open' AND expires_at >= $3",
            &[&id, &n(revision)?, &now],
        )
        .await?;
        if bumped != 1 {
            return Ok(BasketWrite::Stale);
        }
        if let Some(of) = &line.refund_of {
            // A hold left by a basket that expired unpaid no longer counts.
            exec(
                &tx,
                &format!(
                    "DELETE FROM refund_holds WHERE payment_id = $1 AND product_id = $2 \
                     AND basket_id IN (SELECT b.id FROM baskets b \
                       LEFT JOIN payments p ON p.id = b.payment_id \
                       WHERE b.expires_at < $3 AND (p.state IS NULL OR p.state IN {IDLE}))"
                ),
                &[of, &line.product_id, &now],
            )
            .await?;
            let held = exec(
                &tx,
                "INSERT INTO refund_holds (payment_id, product_id, basket_id) \
                 VALUES ($1, $2, $3) ON CONFLICT (payment_id, product_id) DO NOTHING",
                &[of, &line.product_id, &id],
            )
            .await?;
            if held == 0 {
                let mine = query(
                    &tx,
                    "SELECT basket_id FROM refund_holds WHERE payment_id = $1 AND product_id = $2",
                    &[of, &line.product_id],
                )
                .await?;
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
            "INSERT INTO basket_lines (basket_id, position, product_id, refund, count, \
             refund_of, unlocks) VALUES ($1, (SELECT COALESCE(MAX(position), -1) + 1 \
             FROM basket_lines WHERE basket_id = $1), $2, $3, $4, $5, $6) \
             ON CONFLICT (basket_id, product_id, refund) DO UPDATE SET \
             count = excluded.count, refund_of = excluded.refund_of, unlocks = excluded.unlocks",
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
            &**c,
            "UPDATE baskets SET state = 'checked_out', revision = revision + 1, \
             contract_token = $3, challenge = $4, expires_at = GREATEST(expires_at, $5) \
             WHERE id = $1 AND revision = $2 AND state = 'open'",
            &[
                &id,
                &n(revision)?,
                &contract_token,
                &challenge,
                &n(expires_at)?,
            ],
        )
        .await?;
        Ok(if changed == 1 {
            BasketWrite::Done
        } else {
            BasketWrite::Stale
        })
    }

    async fn set_basket_payment(&self, id: &str, payment_id: &str) -> StoreResult<()> {
        let c = self.client().await?;
        exec(
            &**c,
            "UPDATE baskets SET payment_id = $2 WHERE id = $1",
            &[&id, &payment_id],
        )
        .await?;
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
        let ids = query(
            &tx,
            &format!(
                "SELECT b.id FROM baskets b LEFT JOIN payments p ON p.id = b.payment_id \
                 WHERE b.state != 'released' AND b.expires_at < $1 \
                 AND (p.state IS NULL OR p.state IN {IDLE})"
            ),
            &[&n(now)?],
        )
        .await?;
        let ids = rows(ids, |r| r.text(0))?;
        for id in &ids {
            release(&tx, id).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(ids.len() as u64)
    }

    async fn purchases(&self, payment_id: &str) -> StoreResult<Vec<Purchase>> {
        let c = self.client().await?;
        let r = query(
            &**c,
            &format!(
                "SELECT l.product_id, l.count, l.unlocks, CASE WHEN EXISTS ( \
                   SELECT 1 FROM refund_holds h JOIN baskets rb ON rb.id = h.basket_id \
                   JOIN payments rp ON rp.id = rb.payment_id \
                   WHERE h.payment_id = $1 AND h.product_id = l.product_id \
                   AND rp.state IN {UNLOCKS}) THEN 1::bigint ELSE 0::bigint END \
                 FROM baskets b JOIN basket_lines l ON l.basket_id = b.id \
                 WHERE b.payment_id = $1 AND l.refund = 0 ORDER BY l.position"
            ),
            &[&payment_id],
        )
        .await?;
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
        let r = query(
            &**c,
            "SELECT DISTINCT p.contract_hash FROM baskets b \
             JOIN refund_holds h ON h.basket_id = b.id \
             JOIN payments p ON p.id = h.payment_id \
             WHERE b.payment_id = $1 AND p.contract_hash IS NOT NULL",
            &[&payment_id],
        )
        .await?;
        Ok(rows(r, |r| r.opt_hash(0))?.into_iter().flatten().collect())
    }
}
