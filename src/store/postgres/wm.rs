//! [`WmStore`] on PostgreSQL (migration 4).

use async_trait::async_trait;

use super::{begin, exec, n, pg, query, PostgresStore};
use crate::store::shared::{sql, wm_decide, Cols, WmDecision};
use crate::store::wm::{NewWmUnlock, WmCredit, WmStore, WmUnlock};
use crate::store::{StoreError, StoreResult};

#[async_trait]
impl WmStore for PostgresStore {
    /// One `READ COMMITTED` transaction holding the incoming payment's row lock
    /// (`SELECT … FOR UPDATE` after creating the row when new), so concurrent
    /// credits of one incoming payment consume its units once.
    async fn wm_credit(
        &self,
        url: &str,
        wallet: &str,
        received: u128,
        required: u128,
        unlock: NewWmUnlock,
        now: u64,
    ) -> StoreResult<WmCredit> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let now = n(now)?;
        exec(
            &tx,
            "INSERT INTO wm_incoming (url, wallet, received, consumed, updated_at) \
             VALUES ($1, $2, '0', '0', $3) ON CONFLICT (url) DO NOTHING",
            &[&url, &wallet, &now],
        )
        .await?;
        let row = query(
            &tx,
            "SELECT received, consumed FROM wm_incoming WHERE url = $1 FOR UPDATE",
            &[&url],
        )
        .await?;
        let row = row
            .first()
            .ok_or_else(|| StoreError::Unavailable("wm_incoming row vanished".into()))?;
        let (seen, consumed) = (row.amount(0)?.0, row.amount(1)?.0);
        let WmDecision {
            received,
            consumed,
            outcome,
        } = wm_decide(seen, consumed, received, required);
        exec(
            &tx,
            "UPDATE wm_incoming SET received = $2, consumed = $3, updated_at = $4 WHERE url = $1",
            &[&url, &received.to_string(), &consumed.to_string(), &now],
        )
        .await?;
        if matches!(outcome, WmCredit::Unlocked { .. }) {
            exec(
                &tx,
                sql::WM_UNLOCK_INSERT,
                &[
                    &unlock.id,
                    &&unlock.hash[..],
                    &url,
                    &unlock.scope,
                    &required.to_string(),
                    &now,
                    &n(unlock.access_ttl_secs)?,
                ],
            )
            .await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(outcome)
    }

    async fn wm_unlock(&self, hash: &[u8; 32]) -> StoreResult<Option<WmUnlock>> {
        let c = self.client().await?;
        let r = query(&c, sql::WM_UNLOCK, &[&&hash[..]]).await?;
        r.first()
            .map(|r| {
                Ok(WmUnlock {
                    id: r.text(0)?,
                    scope: r.text(1)?,
                    created_at: r.u64(2)?,
                    access_ttl_secs: r.u64(3)?,
                    incoming_payment: r.text(4)?,
                })
            })
            .transpose()
    }
}
