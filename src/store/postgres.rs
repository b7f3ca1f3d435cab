//! The fleet store: PostgreSQL through tokio-postgres, with a deadpool pool.
//!
//! The schema of [`super::sqlite`] (its migrations, translated by
//! [`schema::migration`]), the same
//! unique constraints, and the same decisions: the row mapping, the re-evaluation
//! of payments, the postback body and the Web Monetization credit are shared with
//! SQLite in `store::shared`; only the SQL is written here.
//!
//! **Isolation.** Every method that moves money is one transaction at `READ
//! COMMITTED` with explicit locks, chosen over `SERIALIZABLE` so that no caller
//! ever sees a serialization failure to retry, and the locks name exactly what must
//! not interleave:
//! * payment states and credited transfers change only under the transaction
//!   advisory lock [`CHAIN_LOCK`] (`apply_scan`, `record_provisional`, `refresh`,
//!   `revert_to`, and basket releases, which read payment states): one writer of
//!   "paid" at a time across the fleet, as `BEGIN IMMEDIATE` is on SQLite;
//! * a claim takes the derivation counter row lock (`UPDATE meta … RETURNING`) and
//!   holds it until the payment is inserted and committed: an index is never handed
//!   out twice, and a rolled-back claim hands its index to the next claim;
//! * a basket write bumps its revision with a compare-and-swap `UPDATE` (the row
//!   lock serialises writers of one basket); a refund hold is a primary key;
//! * a Web Monetization credit locks its incoming payment row (`FOR UPDATE`).

use std::collections::BTreeSet;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, NoTls, Row};

mod basket;
pub mod listen;
pub mod schema;
mod wm;

use super::shared::{
    bad, delivery_from, payment_from, reevaluated, sql, stored_from, Cols, Postback, Stored,
    KEEP_BLOCKS, REEVALUATE_WINDOW,
};
use super::{
    AttemptOutcome, BlockRef, Delivery, NewPayment, Payment, ScanBatch, StateChange, StateTotal,
    Store, StoreError, StoreResult, Transfer,
};
use crate::amount::Amount;
use crate::payments::state::PaymentState;

/// The session advisory lock held while migrating.
pub const MIGRATE_LOCK: i64 = 0x746f_6c6c_6761_7401;

/// The transaction advisory lock held by every write of payment states and
/// credited transfers.
pub const CHAIN_LOCK: i64 = 0x746f_6c6c_6761_7402;

/// Connections in the pool.
const POOL_SIZE: usize = 16;

/// Maps tokio-postgres errors: unique violations are [`StoreError::Conflict`],
/// everything else [`StoreError::Unavailable`].
pub fn pg(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        return StoreError::Conflict(e.to_string());
    }
    StoreError::Unavailable(e.to_string())
}

/// The connection settings of `url` (`postgres://user:password@host:port/db`); the
/// error never repeats the URL (it may hold a password).
pub fn config_of(url: &str) -> StoreResult<tokio_postgres::Config> {
    url.parse()
        .map_err(|e| StoreError::Unavailable(format!("bad PostgreSQL url: {e}")))
}

/// A `u64` as `BIGINT`: refused (never wrapped) above `i64::MAX`.
fn n(v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::Unavailable(format!("{v} is out of range")))
}

fn opt_n(v: Option<u64>) -> StoreResult<Option<i64>> {
    v.map(n).transpose()
}

impl Cols for Row {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.try_get(i).map_err(pg)
    }

    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.try_get(i).map_err(pg)
    }

    fn opt_u64(&self, i: usize) -> StoreResult<Option<u64>> {
        let v: Option<i64> = self.try_get(i).map_err(pg)?;
        v.map(|v| u64::try_from(v).map_err(|_| bad(i, format!("{v} is negative"))))
            .transpose()
    }

    fn opt_hash(&self, i: usize) -> StoreResult<Option<[u8; 32]>> {
        let v: Option<Vec<u8>> = self.try_get(i).map_err(pg)?;
        v.map(|b| {
            <[u8; 32]>::try_from(b.as_slice())
                .map_err(|_| bad(i, format!("a hash of {} bytes", b.len())))
        })
        .transpose()
    }

    fn flag(&self, i: usize) -> StoreResult<bool> {
        self.try_get::<_, i64>(i).map(|v| v != 0).map_err(pg)
    }
}

/// Maps every row with `f`.
fn rows<T>(rows: Vec<Row>, f: impl Fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(f).collect()
}

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// The dedicated connection that holds (or tries for) [`LEAD_LOCK`].
    leader: tokio::sync::Mutex<Option<Leader>>,
}

/// The leadership connection: not pooled, so the lock lives exactly as long as it.
struct Leader {
    client: tokio_postgres::Client,
    leading: bool,
}

/// The session advisory lock of the instance that runs the chain watcher and the
/// postback sender. Held on its own connection: when the instance dies, the
/// connection closes and PostgreSQL releases the lock for a standby to take.
pub const LEAD_LOCK: i64 = 0x746f_6c6c_6761_7403;

/// The `application_name` of the leadership connection.
pub const LEAD_APPLICATION: &str = "tollgate-lead";

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`), applies every
    /// pending migration under the migration lock, and checks a pooled connection.
    pub async fn open(url: &str) -> StoreResult<PostgresStore> {
        let config = config_of(url)?;
        schema::migrate(&config).await?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Unavailable(format!("PostgreSQL pool: {e}")))?;
        let store = PostgresStore {
            pool,
            config,
            leader: tokio::sync::Mutex::new(None),
        };
        drop(store.client().await?);
        Ok(store)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("PostgreSQL connection: {e}")))
    }
}

/// Starts a `READ COMMITTED` transaction.
async fn begin(client: &mut deadpool_postgres::Object) -> StoreResult<Transaction<'_>> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(pg)
}

/// Takes the chain lock for the rest of the transaction.
async fn chain_lock(tx: &Transaction<'_>) -> StoreResult<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHAIN_LOCK])
        .await
        .map_err(pg)?;
    Ok(())
}

/// Runs `sql` as a statement prepared once per pooled connection (deadpool's
/// statement cache): a replay's cache miss is one round trip, not a prepare and an
/// execute.
async fn query(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(pg)?;
    c.query(&stmt, params).await.map_err(pg)
}

/// As [`query`], for a statement whose row count is the answer.
async fn exec(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<u64> {
    let stmt = c.prepare_cached(sql).await.map_err(pg)?;
    c.execute(&stmt, params).await.map_err(pg)
}

async fn payment_by_id(c: &impl GenericClient, id: &str) -> StoreResult<Option<Payment>> {
    let r = query(c, &sql::payment_by_id(), &[&id]).await?;
    r.first().map(payment_from).transpose()
}

async fn payment_by_hash(c: &impl GenericClient, hash: &[u8; 32]) -> StoreResult<Option<Payment>> {
    let h = &hash[..];
    let r = query(c, &sql::payment_by_hash(), &[&h]).await?;
    r.first().map(payment_from).transpose()
}

/// A payment's transfers in chain order (block, first sight, log index).
async fn stored_transfers(c: &impl GenericClient, id: &str) -> StoreResult<Vec<Stored>> {
    let r = query(c, &sql::transfers_of(), &[&id]).await?;
    rows(r, stored_from)
}

async fn set_checkpoint(
    tx: &Transaction<'_>,
    chain_id: u64,
    number: u64,
    hash: &str,
) -> StoreResult<()> {
    exec(
        tx,
        sql::SET_CHECKPOINT,
        &[&n(chain_id)?, &n(number)?, &hash],
    )
    .await?;
    Ok(())
}

/// Remembers a canonical block hash and forgets all but the newest [`KEEP_BLOCKS`].
async fn remember_block(tx: &Transaction<'_>, chain_id: u64, block: &BlockRef) -> StoreResult<()> {
    let chain = n(chain_id)?;
    exec(
        tx,
        sql::REMEMBER_BLOCK,
        &[&chain, &n(block.number)?, &block.hash.to_ascii_lowercase()],
    )
    .await?;
    exec(tx, sql::FORGET_OLD_BLOCKS, &[&chain, &KEEP_BLOCKS]).await?;
    Ok(())
}

/// The ids of payments with a transfer above `block` on `chain_id`.
async fn paid_above(tx: &Transaction<'_>, chain_id: u64, block: u64) -> StoreResult<Vec<String>> {
    let r = query(tx, sql::PAID_ABOVE, &[&n(chain_id)?, &n(block)?]).await?;
    rows(r, |r| r.text(0))
}

/// Re-evaluates the payments that can still change (the same selection as the
/// SQLite store: open payments, `touched`, and payments with a transfer within
/// [`REEVALUATE_WINDOW`] blocks of `head`; never `refunded`), writing back what
/// [`reevaluated`] decides and queuing its postbacks. Runs under [`CHAIN_LOCK`].
async fn reevaluate(
    tx: &Transaction<'_>,
    chain_id: u64,
    head: u64,
    now: u64,
    mut touched: BTreeSet<String>,
) -> StoreResult<Vec<StateChange>> {
    let open = query(tx, sql::OPEN_PAYMENTS, &[&n(now)?]).await?;
    touched.extend(rows(open, |r| r.text(0))?);
    touched.extend(paid_above(tx, chain_id, head.saturating_sub(REEVALUATE_WINDOW)).await?);
    let mut payments = Vec::with_capacity(touched.len());
    for id in &touched {
        if let Some(p) = payment_by_id(tx, id).await? {
            if p.state != PaymentState::Refunded {
                payments.push(p);
            }
        }
    }
    payments.sort_by_key(|p| p.derivation_index);

    let mut changes = Vec::new();
    for before in payments {
        let stored = stored_transfers(tx, &before.id).await?;
        let Some(r) = reevaluated(&before, &stored, head, now) else {
            continue;
        };
        let a = &r.after;
        exec(
            tx,
            sql::UPDATE_PAYMENT,
            &[
                &a.state.as_str(),
                &a.received.0.to_string(),
                &opt_n(a.seen_at)?,
                &n(a.confirmations)?,
                &a.tx_hash,
                &opt_n(a.paid_at)?,
                &a.id,
            ],
        )
        .await?;
        if let Some(pb) = &r.postback {
            queue_postback(tx, pb).await?;
        }
        changes.extend(r.change);
    }
    Ok(changes)
}

/// Queues a postback decided by [`reevaluated`]; a payment keeps its first delivery.
async fn queue_postback(tx: &Transaction<'_>, pb: &Postback) -> StoreResult<()> {
    exec(
        tx,
        sql::QUEUE_POSTBACK,
        &[&pb.id, &pb.payment_id, &pb.url, &pb.body, &n(pb.now)?],
    )
    .await?;
    Ok(())
}

/// Credits transfer `t` to the payment owning its receiving address; returns that
/// payment when something changed (the same rules as the SQLite store).
async fn insert_transfer(
    tx: &Transaction<'_>,
    t: &Transfer,
    now: u64,
    provisional: bool,
) -> StoreResult<Option<String>> {
    let owner = query(tx, sql::PAYMENT_BY_ADDRESS, &[&t.to.to_ascii_lowercase()]).await?;
    let Some(payment) = owner.first().map(|r| r.text(0)).transpose()? else {
        return Ok(None); // not one of ours
    };
    let changed = exec(
        tx,
        &sql::insert_transfer(provisional),
        &[
            &n(t.chain_id)?,
            &t.tx_hash.to_ascii_lowercase(),
            &n(t.log_index)?,
            &n(t.block_number)?,
            &t.block_hash.to_ascii_lowercase(),
            &payment,
            &t.to,
            &t.from,
            &t.value.0.to_string(),
            &n(now)?,
            &i64::from(provisional),
        ],
    )
    .await?;
    Ok((changed > 0).then_some(payment))
}

#[async_trait]
impl Store for PostgresStore {
    /// One `READ COMMITTED` transaction holding the derivation counter's row lock
    /// (`UPDATE meta … RETURNING`) from allocating the index to the commit, so no
    /// two claims share an index; `ON CONFLICT (contract_hash) DO NOTHING` makes a
    /// concurrent claim of the same contract return the first one's payment (its
    /// own transaction, and so its index, rolls back).
    async fn claim(
        &self,
        new: NewPayment,
        derive: &(dyn Fn(u32) -> Result<String, String> + Send + Sync),
    ) -> StoreResult<(Payment, bool)> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        if let Some(hash) = &new.contract_hash {
            if let Some(p) = payment_by_hash(&tx, hash).await? {
                return Ok((p, false));
            }
        }
        let next = query(
            &tx,
            "UPDATE meta SET value = value + 1 WHERE key = 'next_derivation_index' \
             RETURNING value - 1",
            &[],
        )
        .await?;
        let next: i64 = next
            .first()
            .ok_or_else(|| StoreError::Unavailable("no derivation counter".into()))?
            .try_get(0)
            .map_err(pg)?;
        let index = u32::try_from(next).map_err(|_| {
            StoreError::Unavailable(format!("derivation index {next} is out of range"))
        })?;
        let address = derive(index).map_err(|e| {
            StoreError::Unavailable(format!("deriving the address for index {index}: {e}"))
        })?;
        let zero = new.amount.is_zero();
        let state = if zero {
            PaymentState::Paid
        } else {
            PaymentState::New
        };
        let paid_at = if zero { Some(new.created_at) } else { None };
        let hash = new.contract_hash.as_ref().map(|h| h.to_vec());
        let inserted = exec(
            &tx,
            "INSERT INTO payments (id, derivation_index, address, address_lc, contract_hash, \
             contract_token, scope, amount, received, state, confirmations, \
             required_confirmations, access_ttl_secs, created_at, expires_at, data, \
             postback_url, paid_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '0', $9, 0, $10, $11, $12, $13, $14, \
             $15, $16) ON CONFLICT (contract_hash) DO NOTHING",
            &[
                &new.id,
                &next,
                &address,
                &address.to_ascii_lowercase(),
                &hash,
                &new.contract_token,
                &new.scope,
                &new.amount.0.to_string(),
                &state.as_str(),
                &n(new.required_confirmations)?,
                &n(new.access_ttl_secs)?,
                &n(new.created_at)?,
                &n(new.expires_at)?,
                &new.data,
                &new.postback_url,
                &opt_n(paid_at)?,
            ],
        )
        .await?;
        if inserted == 0 {
            // Another claim of this contract committed first: ours rolls back.
            drop(tx);
            let hash = new.contract_hash.unwrap_or_default();
            let p = payment_by_hash(&client, &hash)
                .await?
                .ok_or_else(|| StoreError::Conflict("claim: contract claimed and gone".into()))?;
            return Ok((p, false));
        }
        let p = payment_by_id(&tx, &new.id)
            .await?
            .ok_or_else(|| StoreError::Unavailable("claimed payment vanished".into()))?;
        tx.commit().await.map_err(pg)?;
        Ok((p, true))
    }

    async fn payment(&self, id: &str) -> StoreResult<Option<Payment>> {
        payment_by_id(&self.client().await?, id).await
    }

    async fn payment_by_contract(&self, hash: &[u8; 32]) -> StoreResult<Option<Payment>> {
        payment_by_hash(&self.client().await?, hash).await
    }

    /// One `READ COMMITTED` transaction under [`CHAIN_LOCK`].
    async fn apply_scan(&self, batch: ScanBatch) -> StoreResult<Vec<StateChange>> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        chain_lock(&tx).await?;
        let mut touched = BTreeSet::new();
        for t in &batch.transfers {
            if let Some(p) = insert_transfer(&tx, t, batch.now, false).await? {
                touched.insert(p);
            }
        }
        // A provisional transfer in the scanned range that the scan did not
        // confirm is not on the canonical chain: forget it.
        let chain = n(batch.chain_id)?;
        let upto = n(batch.checkpoint.number)?;
        let stale = query(&tx, sql::STALE_PROVISIONAL, &[&chain, &upto]).await?;
        touched.extend(rows(stale, |r| r.text(0))?);
        exec(&tx, sql::DROP_PROVISIONAL, &[&chain, &upto]).await?;
        set_checkpoint(
            &tx,
            batch.chain_id,
            batch.checkpoint.number,
            &batch.checkpoint.hash.to_ascii_lowercase(),
        )
        .await?;
        remember_block(&tx, batch.chain_id, &batch.checkpoint).await?;
        let changes = reevaluate(&tx, batch.chain_id, batch.head, batch.now, touched).await?;
        tx.commit().await.map_err(pg)?;
        Ok(changes)
    }

    /// One `READ COMMITTED` transaction under [`CHAIN_LOCK`].
    async fn record_provisional(
        &self,
        transfers: Vec<Transfer>,
        head: u64,
        now: u64,
    ) -> StoreResult<Vec<StateChange>> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        chain_lock(&tx).await?;
        let mut touched = BTreeSet::new();
        let chain_id = transfers.first().map_or(0, |t| t.chain_id);
        for t in &transfers {
            if let Some(p) = insert_transfer(&tx, t, now, true).await? {
                touched.insert(p);
            }
        }
        let changes = reevaluate(&tx, chain_id, head, now, touched).await?;
        tx.commit().await.map_err(pg)?;
        Ok(changes)
    }

    /// One `READ COMMITTED` transaction under [`CHAIN_LOCK`].
    async fn refresh(&self, chain_id: u64, head: u64, now: u64) -> StoreResult<Vec<StateChange>> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        chain_lock(&tx).await?;
        let changes = reevaluate(&tx, chain_id, head, now, BTreeSet::new()).await?;
        tx.commit().await.map_err(pg)?;
        Ok(changes)
    }

    /// One `READ COMMITTED` transaction under [`CHAIN_LOCK`].
    async fn revert_to(
        &self,
        chain_id: u64,
        ancestor: u64,
        head: u64,
        now: u64,
    ) -> StoreResult<Vec<StateChange>> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        chain_lock(&tx).await?;
        let touched: BTreeSet<String> = paid_above(&tx, chain_id, ancestor)
            .await?
            .into_iter()
            .collect();
        let (chain, anc) = (n(chain_id)?, n(ancestor)?);
        exec(&tx, sql::DROP_TRANSFERS_ABOVE, &[&chain, &anc]).await?;
        exec(&tx, sql::DROP_BLOCKS_ABOVE, &[&chain, &anc]).await?;
        let hash = query(&tx, sql::BLOCK_HASH, &[&chain, &anc]).await?;
        let hash = hash.first().map(|r| r.text(0)).transpose()?;
        set_checkpoint(&tx, chain_id, ancestor, hash.as_deref().unwrap_or("")).await?;
        let changes = reevaluate(&tx, chain_id, head, now, touched).await?;
        tx.commit().await.map_err(pg)?;
        Ok(changes)
    }

    async fn checkpoint(&self, chain_id: u64) -> StoreResult<Option<BlockRef>> {
        let c = self.client().await?;
        let r = query(&c, sql::CHECKPOINT, &[&n(chain_id)?]).await?;
        r.first()
            .map(|r| {
                Ok(BlockRef {
                    number: r.u64(0)?,
                    hash: r.text(1)?,
                })
            })
            .transpose()
    }

    async fn recent_blocks(&self, chain_id: u64, limit: usize) -> StoreResult<Vec<BlockRef>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let c = self.client().await?;
        let r = query(&c, sql::RECENT_BLOCKS, &[&n(chain_id)?, &limit]).await?;
        rows(r, |r| {
            Ok(BlockRef {
                number: r.u64(0)?,
                hash: r.text(1)?,
            })
        })
    }

    async fn transfers_of(&self, id: &str) -> StoreResult<Vec<Transfer>> {
        let c = self.client().await?;
        Ok(stored_transfers(&c, id)
            .await?
            .into_iter()
            .map(|s| s.transfer)
            .collect())
    }

    async fn all_payments(&self) -> StoreResult<Vec<Payment>> {
        let c = self.client().await?;
        let r = query(&c, &sql::all_payments(), &[]).await?;
        rows(r, payment_from)
    }

    /// `numeric` sums exactly at any size; a total past `u128::MAX` saturates.
    async fn payment_totals(&self) -> StoreResult<Vec<StateTotal>> {
        let c = self.client().await?;
        let r = query(
            &c,
            "SELECT state, COUNT(*), COALESCE(SUM(received::numeric), 0)::text \
             FROM payments GROUP BY state",
            &[],
        )
        .await?;
        r.iter()
            .map(|row| {
                let state: String = row.get(0);
                let count: i64 = row.get(1);
                let sum: String = row.get(2);
                Ok(StateTotal {
                    state: PaymentState::parse(&state).ok_or_else(|| {
                        StoreError::Unavailable(format!("bad payment state {state:?}"))
                    })?,
                    count: u64::try_from(count).unwrap_or(0),
                    received: Amount(sum.parse::<u128>().unwrap_or(u128::MAX)),
                })
            })
            .collect()
    }

    async fn due_deliveries(&self, now: u64, limit: usize) -> StoreResult<Vec<Delivery>> {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let c = self.client().await?;
        let r = query(&c, &sql::due_deliveries(), &[&now, &limit]).await?;
        rows(r, delivery_from)
    }

    /// One statement (its own `READ COMMITTED` transaction).
    async fn record_attempt(&self, id: &str, now: u64, outcome: AttemptOutcome) -> StoreResult<()> {
        let c = self.client().await?;
        match outcome {
            AttemptOutcome::Delivered => exec(&c, sql::DELIVERED, &[&n(now)?, &id]).await?,
            AttemptOutcome::Failed { error, retry_at } => {
                exec(&c, sql::FAILED, &[&opt_n(retry_at)?, &error, &id]).await?
            }
        };
        Ok(())
    }

    async fn deliveries(&self, limit: usize) -> StoreResult<Vec<Delivery>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let c = self.client().await?;
        let r = query(&c, &sql::deliveries(), &[&limit]).await?;
        rows(r, delivery_from)
    }

    /// One statement (its own `READ COMMITTED` transaction).
    async fn redeliver(&self, id: &str, now: u64) -> StoreResult<bool> {
        let c = self.client().await?;
        let changed = exec(&c, sql::REDELIVER, &[&n(now)?, &id]).await?;
        Ok(changed == 1)
    }

    /// Holds [`LEAD_LOCK`] (a session advisory lock) on a dedicated connection:
    /// true while held (checked with a round trip each call: a dead connection means
    /// the lock is gone), else one `pg_try_advisory_lock` attempt. A standby takes
    /// over on its first call after the holder's connection closes.
    async fn lead(&self) -> StoreResult<bool> {
        let mut guard = self.leader.lock().await;
        if guard.as_ref().is_some_and(|l| l.client.is_closed()) {
            *guard = None;
        }
        let leader = match guard.as_mut() {
            Some(l) => l,
            None => {
                let config = listen::dedicated(&self.config, LEAD_APPLICATION);
                let (client, connection) = config.connect(NoTls).await.map_err(pg)?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                guard.insert(Leader {
                    client,
                    leading: false,
                })
            }
        };
        let result = if leader.leading {
            leader.client.simple_query("SELECT 1").await.map(|_| true)
        } else {
            leader
                .client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&LEAD_LOCK])
                .await
                .map(|row| row.get::<_, bool>(0))
        };
        match result {
            Ok(leading) => {
                leader.leading = leading;
                Ok(leading)
            }
            Err(e) => {
                // The connection (and with it any lock) is gone: reconnect next time.
                *guard = None;
                Err(pg(e))
            }
        }
    }
}
