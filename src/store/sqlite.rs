//! The embedded default store: SQLite through rusqlite (bundled).
//!
//! One connection behind a mutex, used from `tokio::task::spawn_blocking`. The
//! database runs in WAL mode with `synchronous=FULL`, so a commit (a payment that
//! reached `paid`) survives a kill -9 or a power cut. The schema is versioned with
//! `PRAGMA user_version`: [`MIGRATIONS`] are applied in order, each in its own
//! transaction.
//!
//! Every method that writes runs in one `BEGIN IMMEDIATE` transaction. The money
//! rules are constraints, not check-then-write: `UNIQUE(chain_id, tx_hash,
//! log_index)` on transfers (with `ON CONFLICT DO NOTHING`: a transfer credits one
//! payment, once, ever), `UNIQUE` contract hash, derivation index and address on
//! payments. Amounts are decimal strings of base units; sums are `u128` in Rust.
//!
//! The statements, the row mapping and the decisions (re-evaluation, postbacks,
//! Web Monetization credits) are shared with the PostgreSQL store
//! (`store::shared`); this module runs them on rusqlite.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

mod basket;
mod columns;
mod schema;
mod wm;

pub use columns::store_error;
pub use schema::MIGRATIONS;

use columns::{mapped, u64_col, Db, U64};
use schema::migrate;

use crate::amount::Amount;
use crate::payments::state::PaymentState;
use crate::store::shared::{
    delivery_from, payment_from, reevaluated, sql, stored_from, Postback, Stored,
};

use super::{
    AttemptOutcome, BlockRef, Delivery, NewPayment, Payment, ScanBatch, StateChange, StateTotal,
    Store, StoreError, StoreResult, Transfer,
};

pub use crate::store::shared::{KEEP_BLOCKS, REEVALUATE_WINDOW};

/// How long a writer waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a claim retries when another process moved the derivation counter
/// between reading it and writing the payment.
const CLAIM_ATTEMPTS: usize = 32;

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Serialises claims in this process, so the derivation counter read before
    /// `derive` is still current when the payment is written (the write checks it
    /// anyway, against other processes).
    claim_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`: WAL, `synchronous=FULL`,
    /// a busy timeout, foreign keys, and every pending migration.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Unavailable(format!("opening {}: {e}", path.display())))?;
        Self::init(conn, true)
    }

    /// An in-memory database (for tests): same schema, nothing durable.
    pub fn open_in_memory() -> StoreResult<SqliteStore> {
        let conn = Connection::open_in_memory().db()?;
        Self::init(conn, false)
    }

    fn init(mut conn: Connection, wal: bool) -> StoreResult<SqliteStore> {
        conn.busy_timeout(BUSY_TIMEOUT).db()?;
        if wal {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                .db()?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Unavailable(format!(
                    "could not enable WAL (journal_mode is {mode})"
                )));
            }
        }
        conn.pragma_update(None, "synchronous", "FULL").db()?;
        conn.pragma_update(None, "foreign_keys", "ON").db()?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            claim_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock can only have happened before a
            // commit: the transaction rolled back when it was dropped, so the
            // connection is consistent and may be used again.
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the blocking pool,
    /// committing when it returns `Ok`.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .db()?;
            let out = f(&tx)?;
            tx.commit().db()?;
            Ok(out)
        })
        .await
    }
}

fn payment_by_id(c: &Connection, id: &str) -> StoreResult<Option<Payment>> {
    c.prepare_cached(&sql::payment_by_id())
        .db()?
        .query_row(params![id], mapped!(payment_from))
        .optional()
        .db()
}

fn payment_by_hash(c: &Connection, hash: &[u8; 32]) -> StoreResult<Option<Payment>> {
    c.prepare_cached(&sql::payment_by_hash())
        .db()?
        .query_row(params![&hash[..]], mapped!(payment_from))
        .optional()
        .db()
}

/// A payment's transfers in chain order (block, first sight, log index).
fn stored_transfers(c: &Connection, id: &str) -> StoreResult<Vec<Stored>> {
    let mut stmt = c.prepare_cached(&sql::transfers_of()).db()?;
    let rows = stmt.query_map(params![id], mapped!(stored_from)).db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

fn next_index(c: &Connection) -> StoreResult<i64> {
    c.query_row(
        "SELECT value FROM meta WHERE key = 'next_derivation_index'",
        [],
        |r| r.get(0),
    )
    .db()
}

/// The write half of a claim: one transaction that re-checks the contract hash and
/// the counter (compare-and-swap), inserts the payment and bumps the counter.
/// `None` when another writer took the index in between: read and derive again.
fn claim_write(
    c: &Connection,
    new: &NewPayment,
    index: u32,
    address: &str,
) -> StoreResult<Option<(Payment, bool)>> {
    if let Some(hash) = &new.contract_hash {
        if let Some(p) = payment_by_hash(c, hash)? {
            return Ok(Some((p, false)));
        }
    }
    if next_index(c)? != i64::from(index) {
        return Ok(None);
    }
    c.prepare_cached(
        "INSERT INTO payments (id, derivation_index, address, address_lc, contract_hash, \
         contract_token, scope, amount, received, state, confirmations, \
         required_confirmations, access_ttl_secs, created_at, expires_at, data, postback_url, \
         paid_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '0', \
         CASE WHEN ?8 = '0' THEN 'paid' ELSE 'new' END, 0, ?9, ?10, ?11, ?12, ?13, ?14, \
         CASE WHEN ?8 = '0' THEN ?11 END)",
    )
    .db()?
    .execute(params![
        new.id,
        index,
        address,
        address.to_ascii_lowercase(),
        new.contract_hash.as_ref().map(|h| &h[..]),
        new.contract_token,
        new.scope,
        new.amount.0.to_string(),
        U64(new.required_confirmations),
        U64(new.access_ttl_secs),
        U64(new.created_at),
        U64(new.expires_at),
        new.data,
        new.postback_url,
    ])
    .db()?;
    c.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'next_derivation_index'",
        params![i64::from(index) + 1],
    )
    .db()?;
    let p = payment_by_id(c, &new.id)?
        .ok_or_else(|| StoreError::Unavailable("claimed payment vanished".into()))?;
    Ok(Some((p, true)))
}

fn set_checkpoint(c: &Connection, chain_id: u64, number: u64, hash: &str) -> StoreResult<()> {
    c.prepare_cached(sql::SET_CHECKPOINT)
        .db()?
        .execute(params![U64(chain_id), U64(number), hash])
        .db()?;
    Ok(())
}

/// Remembers a canonical block hash and forgets all but the newest [`KEEP_BLOCKS`].
fn remember_block(c: &Connection, chain_id: u64, block: &BlockRef) -> StoreResult<()> {
    c.prepare_cached(sql::REMEMBER_BLOCK)
        .db()?
        .execute(params![
            U64(chain_id),
            U64(block.number),
            block.hash.to_ascii_lowercase()
        ])
        .db()?;
    c.prepare_cached(sql::FORGET_OLD_BLOCKS)
        .db()?
        .execute(params![U64(chain_id), KEEP_BLOCKS])
        .db()?;
    Ok(())
}

/// Re-evaluates the payments that can still change: every `new`, `seen` and
/// `confirming` payment, every payment in `touched` (credited or stripped in this
/// transaction), and every payment with a transfer within [`REEVALUATE_WINDOW`]
/// blocks of `head`; `refunded` payments are left alone. `expired` and `underpaid`
/// payments with no recent transfer are skipped: their evaluation only changes when
/// their transfers do, and that puts them in `touched`.
///
/// `paid_at` is set to `now` when a payment first unlocks and cleared when it stops
/// unlocking (reorg). Returns the payments whose state changed, by derivation index.
fn reevaluate(
    c: &Connection,
    chain_id: u64,
    head: u64,
    now: u64,
    mut touched: BTreeSet<String>,
) -> StoreResult<Vec<StateChange>> {
    {
        let mut open = c.prepare_cached(sql::OPEN_PAYMENTS).db()?;
        for id in open
            .query_map(params![U64(now)], |r| r.get::<_, String>(0))
            .db()?
        {
            touched.insert(id.db()?);
        }
        let mut recent = c.prepare_cached(sql::PAID_ABOVE).db()?;
        let since = head.saturating_sub(REEVALUATE_WINDOW);
        for id in recent
            .query_map(params![U64(chain_id), U64(since)], |r| {
                r.get::<_, String>(0)
            })
            .db()?
        {
            touched.insert(id.db()?);
        }
    }
    let mut payments = Vec::with_capacity(touched.len());
    for id in &touched {
        if let Some(p) = payment_by_id(c, id)? {
            if p.state != PaymentState::Refunded {
                payments.push(p);
            }
        }
    }
    payments.sort_by_key(|p| p.derivation_index);

    let mut changes = Vec::new();
    for before in payments {
        let stored = stored_transfers(c, &before.id)?;
        let Some(r) = reevaluated(&before, &stored, head, now) else {
            continue;
        };
        let after = r.after;
        c.prepare_cached(sql::UPDATE_PAYMENT)
            .db()?
            .execute(params![
                after.state.as_str(),
                after.received.0.to_string(),
                after.seen_at.map(U64),
                U64(after.confirmations),
                after.tx_hash,
                after.paid_at.map(U64),
                after.id,
            ])
            .db()?;
        if let Some(pb) = r.postback {
            queue_postback(c, &pb)?;
        }
        changes.extend(r.change);
    }
    Ok(changes)
}

/// Queues a postback decided by [`reevaluated`] (same transaction); a payment
/// keeps its first delivery.
fn queue_postback(c: &Connection, pb: &Postback) -> StoreResult<()> {
    c.prepare_cached(sql::QUEUE_POSTBACK)
        .db()?
        .execute(params![pb.id, pb.payment_id, pb.url, pb.body, U64(pb.now)])
        .db()?;
    Ok(())
}

/// Credits transfer `t` to the payment owning its receiving address; returns that
/// payment when something changed. From the scanner (`provisional` false) a log
/// already recorded provisionally becomes confirmed; a provisional record never
/// overwrites anything.
fn insert_transfer(
    c: &Connection,
    t: &Transfer,
    now: u64,
    provisional: bool,
) -> StoreResult<Option<String>> {
    let payment: Option<String> = c
        .prepare_cached(sql::PAYMENT_BY_ADDRESS)
        .db()?
        .query_row(params![t.to.to_ascii_lowercase()], |r| r.get(0))
        .optional()
        .db()?;
    let Some(payment) = payment else {
        return Ok(None); // not one of ours
    };
    let changed = c
        .prepare_cached(&sql::insert_transfer(provisional))
        .db()?
        .execute(params![
            U64(t.chain_id),
            t.tx_hash.to_ascii_lowercase(),
            U64(t.log_index),
            U64(t.block_number),
            t.block_hash.to_ascii_lowercase(),
            payment,
            t.to,
            t.from,
            t.value.0.to_string(),
            U64(now),
            i64::from(provisional),
        ])
        .db()?;
    Ok((changed > 0).then_some(payment))
}

#[async_trait]
impl Store for SqliteStore {
    async fn claim(
        &self,
        new: NewPayment,
        derive: &(dyn Fn(u32) -> Result<String, String> + Send + Sync),
    ) -> StoreResult<(Payment, bool)> {
        // `derive` borrows from the caller, so it cannot move to the blocking pool:
        // read the next index, derive here, then write in one transaction that checks
        // the index is still next (compare-and-swap). The claim lock makes the check
        // fail only when another process shares the database.
        let _serial = self.claim_lock.lock().await;
        let new = Arc::new(new);
        for _ in 0..CLAIM_ATTEMPTS {
            let n = Arc::clone(&new);
            let (existing, next) = self
                .run(move |c| {
                    if let Some(hash) = &n.contract_hash {
                        if let Some(p) = payment_by_hash(c, hash)? {
                            return Ok((Some(p), 0));
                        }
                    }
                    Ok((None, next_index(c)?))
                })
                .await?;
            if let Some(existing) = existing {
                return Ok((existing, false));
            }
            let index = u32::try_from(next).map_err(|_| {
                StoreError::Unavailable(format!("derivation index {next} is out of range"))
            })?;
            let address = derive(index).map_err(|e| {
                StoreError::Unavailable(format!("deriving the address for index {index}: {e}"))
            })?;
            let n = Arc::clone(&new);
            if let Some(done) = self
                .write(move |c| claim_write(c, &n, index, &address))
                .await?
            {
                return Ok(done);
            }
        }
        Err(StoreError::Unavailable(
            "claim: the derivation index kept moving (contention)".into(),
        ))
    }

    async fn payment(&self, id: &str) -> StoreResult<Option<Payment>> {
        let id = id.to_owned();
        self.run(move |c| payment_by_id(c, &id)).await
    }

    async fn payment_by_contract(&self, hash: &[u8; 32]) -> StoreResult<Option<Payment>> {
        let hash = *hash;
        self.run(move |c| payment_by_hash(c, &hash)).await
    }

    async fn apply_scan(&self, batch: ScanBatch) -> StoreResult<Vec<StateChange>> {
        self.write(move |c| {
            let mut touched = BTreeSet::new();
            for t in &batch.transfers {
                if let Some(p) = insert_transfer(c, t, batch.now, false)? {
                    touched.insert(p);
                }
            }
            // A provisional transfer (a challenge answer's) in the scanned range that
            // the scan did not confirm is not on the canonical chain: forget it.
            {
                let mut stale = c.prepare_cached(sql::STALE_PROVISIONAL).db()?;
                for id in stale
                    .query_map(
                        params![U64(batch.chain_id), U64(batch.checkpoint.number)],
                        |r| r.get::<_, String>(0),
                    )
                    .db()?
                {
                    touched.insert(id.db()?);
                }
            }
            c.prepare_cached(sql::DROP_PROVISIONAL)
                .db()?
                .execute(params![U64(batch.chain_id), U64(batch.checkpoint.number)])
                .db()?;
            set_checkpoint(
                c,
                batch.chain_id,
                batch.checkpoint.number,
                &batch.checkpoint.hash.to_ascii_lowercase(),
            )?;
            remember_block(c, batch.chain_id, &batch.checkpoint)?;
            reevaluate(c, batch.chain_id, batch.head, batch.now, touched)
        })
        .await
    }

    async fn record_provisional(
        &self,
        transfers: Vec<Transfer>,
        head: u64,
        now: u64,
    ) -> StoreResult<Vec<StateChange>> {
        self.write(move |c| {
            let mut touched = BTreeSet::new();
            let chain_id = transfers.first().map_or(0, |t| t.chain_id);
            for t in &transfers {
                if let Some(p) = insert_transfer(c, t, now, true)? {
                    touched.insert(p);
                }
            }
            reevaluate(c, chain_id, head, now, touched)
        })
        .await
    }

    async fn refresh(&self, chain_id: u64, head: u64, now: u64) -> StoreResult<Vec<StateChange>> {
        self.write(move |c| reevaluate(c, chain_id, head, now, BTreeSet::new()))
            .await
    }

    async fn revert_to(
        &self,
        chain_id: u64,
        ancestor: u64,
        head: u64,
        now: u64,
    ) -> StoreResult<Vec<StateChange>> {
        self.write(move |c| {
            let mut touched = BTreeSet::new();
            {
                let mut stmt = c.prepare_cached(sql::PAID_ABOVE).db()?;
                for id in stmt
                    .query_map(params![U64(chain_id), U64(ancestor)], |r| {
                        r.get::<_, String>(0)
                    })
                    .db()?
                {
                    touched.insert(id.db()?);
                }
            }
            c.execute(
                sql::DROP_TRANSFERS_ABOVE,
                params![U64(chain_id), U64(ancestor)],
            )
            .db()?;
            c.execute(
                sql::DROP_BLOCKS_ABOVE,
                params![U64(chain_id), U64(ancestor)],
            )
            .db()?;
            let hash: Option<String> = c
                .query_row(
                    sql::BLOCK_HASH,
                    params![U64(chain_id), U64(ancestor)],
                    |r| r.get(0),
                )
                .optional()
                .db()?;
            set_checkpoint(c, chain_id, ancestor, hash.as_deref().unwrap_or(""))?;
            reevaluate(c, chain_id, head, now, touched)
        })
        .await
    }

    async fn checkpoint(&self, chain_id: u64) -> StoreResult<Option<BlockRef>> {
        self.run(move |c| {
            c.query_row(sql::CHECKPOINT, params![U64(chain_id)], |r| {
                Ok(BlockRef {
                    number: u64_col(r, 0)?,
                    hash: r.get(1)?,
                })
            })
            .optional()
            .db()
        })
        .await
    }

    async fn recent_blocks(&self, chain_id: u64, limit: usize) -> StoreResult<Vec<BlockRef>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            let mut stmt = c.prepare_cached(sql::RECENT_BLOCKS).db()?;
            let rows = stmt
                .query_map(params![U64(chain_id), limit], |r| {
                    Ok(BlockRef {
                        number: u64_col(r, 0)?,
                        hash: r.get(1)?,
                    })
                })
                .db()?;
            rows.collect::<rusqlite::Result<Vec<_>>>().db()
        })
        .await
    }

    async fn transfers_of(&self, id: &str) -> StoreResult<Vec<Transfer>> {
        let id = id.to_owned();
        self.run(move |c| {
            Ok(stored_transfers(c, &id)?
                .into_iter()
                .map(|s| s.transfer)
                .collect())
        })
        .await
    }

    async fn due_deliveries(&self, now: u64, limit: usize) -> StoreResult<Vec<Delivery>> {
        self.run(move |c| {
            let mut st = c.prepare_cached(&sql::due_deliveries()).db()?;
            let rows = st
                .query_map(
                    params![U64(now.min(i64::MAX as u64)), limit as i64],
                    mapped!(delivery_from),
                )
                .db()?;
            rows.map(|r| r.db()).collect()
        })
        .await
    }

    async fn record_attempt(&self, id: &str, now: u64, outcome: AttemptOutcome) -> StoreResult<()> {
        let id = id.to_string();
        self.write(move |c| {
            match outcome {
                AttemptOutcome::Delivered => c
                    .prepare_cached(sql::DELIVERED)
                    .db()?
                    .execute(params![U64(now), id])
                    .db()?,
                AttemptOutcome::Failed { error, retry_at } => c
                    .prepare_cached(sql::FAILED)
                    .db()?
                    .execute(params![retry_at.map(U64), error, id])
                    .db()?,
            };
            Ok(())
        })
        .await
    }

    async fn deliveries(&self, limit: usize) -> StoreResult<Vec<Delivery>> {
        self.run(move |c| {
            let mut st = c.prepare_cached(&sql::deliveries()).db()?;
            let rows = st
                .query_map(params![limit as i64], mapped!(delivery_from))
                .db()?;
            rows.map(|r| r.db()).collect()
        })
        .await
    }

    async fn redeliver(&self, id: &str, now: u64) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |c| {
            let n = c
                .prepare_cached(sql::REDELIVER)
                .db()?
                .execute(params![U64(now), id])
                .db()?;
            Ok(n == 1)
        })
        .await
    }

    async fn all_payments(&self) -> StoreResult<Vec<Payment>> {
        self.run(|c| {
            let mut stmt = c.prepare_cached(&sql::all_payments()).db()?;
            let rows = stmt.query_map([], mapped!(payment_from)).db()?;
            rows.collect::<rusqlite::Result<Vec<_>>>().db()
        })
        .await
    }

    /// SQLite sums integers exactly or fails with "integer overflow" (it never
    /// rounds), so the sum is taken in SQL while every amount fits in an `i64` and
    /// the total does; otherwise the amounts of that state are added up here.
    async fn payment_totals(&self) -> StoreResult<Vec<StateTotal>> {
        self.run(|c| {
            let fast = c
                .prepare_cached(
                    "SELECT state, COUNT(*), MAX(LENGTH(received)), \
                     SUM(CAST(received AS INTEGER)) FROM payments GROUP BY state",
                )
                .and_then(|mut stmt| {
                    stmt.query_map([], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                });
            // The sum overflowed (or an amount is too long to cast): the slow path
            // below handles every state.
            let groups = fast.unwrap_or_default();
            let exact = |state: &str| -> StoreResult<u128> {
                let mut stmt = c
                    .prepare_cached("SELECT received FROM payments WHERE state = ?1")
                    .db()?;
                let rows = stmt.query_map([state], |r| r.get::<_, String>(0)).db()?;
                let mut sum = 0u128;
                for text in rows {
                    let text = text.db()?;
                    let v = text
                        .parse::<u128>()
                        .map_err(|e| StoreError::Unavailable(format!("received {text:?}: {e}")))?;
                    sum = sum.saturating_add(v);
                }
                Ok(sum)
            };
            let mut out = Vec::new();
            if groups.is_empty() {
                let mut stmt = c
                    .prepare_cached("SELECT state, COUNT(*) FROM payments GROUP BY state")
                    .db()?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                    .db()?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .db()?;
                for (state, count) in rows {
                    out.push((state.clone(), count, exact(&state)?));
                }
            } else {
                for (state, count, longest, sum) in groups {
                    let sum = match u128::try_from(sum) {
                        Ok(v) if longest <= 18 => v,
                        _ => exact(&state)?,
                    };
                    out.push((state, count, sum));
                }
            }
            out.into_iter()
                .map(|(state, count, received)| {
                    Ok(StateTotal {
                        state: PaymentState::parse(&state).ok_or_else(|| {
                            StoreError::Unavailable(format!("bad payment state {state:?}"))
                        })?,
                        count: u64::try_from(count).unwrap_or(0),
                        received: Amount(received),
                    })
                })
                .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests;
