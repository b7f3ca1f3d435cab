//! [`WmStore`] on SQLite (migration 4).

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::columns::{u64_col, Db, DbAmount, U64};
use super::SqliteStore;
use crate::store::shared::{sql, wm_decide, WmDecision};
use crate::store::wm::{NewWmUnlock, WmCredit, WmStore, WmUnlock};
use crate::store::{StoreError, StoreResult};

#[async_trait]
impl WmStore for SqliteStore {
    async fn wm_credit(
        &self,
        url: &str,
        wallet: &str,
        received: u128,
        required: u128,
        unlock: NewWmUnlock,
        now: u64,
    ) -> StoreResult<WmCredit> {
        let (url, wallet) = (url.to_string(), wallet.to_string());
        self.write(move |c| {
            let row: Option<(DbAmount, DbAmount)> = c
                .prepare_cached("SELECT received, consumed FROM wm_incoming WHERE url = ?1")
                .db()?
                .query_row(params![url], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .db()?;
            let (seen, consumed) = row.map_or((0, 0), |(r, c)| (r.0 .0, c.0 .0));
            let WmDecision {
                received,
                consumed,
                outcome,
            } = wm_decide(seen, consumed, received, required);
            c.prepare_cached(
                "INSERT INTO wm_incoming (url, wallet, received, consumed, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (url) DO UPDATE SET \
                 received = excluded.received, consumed = excluded.consumed, \
                 updated_at = excluded.updated_at",
            )
            .db()?
            .execute(params![
                url,
                wallet,
                received.to_string(),
                consumed.to_string(),
                U64(now)
            ])
            .db()?;
            if matches!(outcome, WmCredit::Unlocked { .. }) {
                c.prepare_cached(sql::WM_UNLOCK_INSERT)
                    .db()?
                    .execute(params![
                        unlock.id,
                        &unlock.hash[..],
                        url,
                        unlock.scope,
                        required.to_string(),
                        U64(now),
                        U64(unlock.access_ttl_secs)
                    ])
                    .db()?;
            }
            Ok(outcome)
        })
        .await
    }

    async fn wm_unlock(&self, hash: &[u8; 32]) -> StoreResult<Option<WmUnlock>> {
        let h = hash.to_vec();
        self.run(move |c| {
            c.prepare_cached(sql::WM_UNLOCK)
                .db()?
                .query_row(params![h], |r| {
                    Ok(WmUnlock {
                        id: r.get(0)?,
                        scope: r.get(1)?,
                        created_at: u64_col(r, 2)?,
                        access_ttl_secs: u64_col(r, 3)?,
                        incoming_payment: r.get(4)?,
                    })
                })
                .optional()
                .db()
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => StoreError::Unavailable(m),
            e => e,
        })
    }
}
