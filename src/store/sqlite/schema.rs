//! The SQLite schema: versioned migrations, applied in order at open.

use rusqlite::{Connection, TransactionBehavior};

use super::columns::Db;
use crate::store::{StoreError, StoreResult};

/// The schema migrations, in order. Migration `i` moves `PRAGMA user_version`
/// from `i` to `i + 1`; applied migrations are never edited, only appended to.
pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    INSERT INTO meta (key, value) VALUES ('next_derivation_index', 0);

    CREATE TABLE payments (
        id                     TEXT PRIMARY KEY,
        derivation_index       INTEGER NOT NULL UNIQUE
                               CHECK (derivation_index BETWEEN 0 AND 4294967295),
        address                TEXT NOT NULL UNIQUE,
        address_lc             TEXT NOT NULL UNIQUE,
        contract_hash          BLOB UNIQUE
                               CHECK (contract_hash IS NULL OR length(contract_hash) = 32),
        contract_token         TEXT,
        scope                  TEXT,
        amount                 TEXT NOT NULL,
        received               TEXT NOT NULL DEFAULT '0',
        state                  TEXT NOT NULL CHECK (state IN ('new', 'seen', 'confirming',
                                   'paid', 'expired', 'paid_late', 'underpaid', 'refunded')),
        seen_at                INTEGER,
        paid_at                INTEGER,
        tx_hash                TEXT,
        confirmations          INTEGER NOT NULL DEFAULT 0,
        required_confirmations INTEGER NOT NULL,
        access_ttl_secs        INTEGER NOT NULL,
        created_at             INTEGER NOT NULL,
        expires_at             INTEGER NOT NULL,
        data                   TEXT,
        postback_url           TEXT
    );
    CREATE INDEX payments_by_state ON payments (state);

    CREATE TABLE transfers (
        chain_id     INTEGER NOT NULL,
        tx_hash      TEXT NOT NULL,
        log_index    INTEGER NOT NULL,
        block_number INTEGER NOT NULL,
        block_hash   TEXT NOT NULL,
        payment_id   TEXT NOT NULL REFERENCES payments (id),
        to_address   TEXT NOT NULL,
        from_address TEXT NOT NULL,
        value        TEXT NOT NULL,
        seen_at      INTEGER NOT NULL,
        UNIQUE (chain_id, tx_hash, log_index)
    );
    CREATE INDEX transfers_by_payment ON transfers (payment_id);
    CREATE INDEX transfers_by_block ON transfers (chain_id, block_number);

    CREATE TABLE blocks (
        chain_id INTEGER NOT NULL,
        number   INTEGER NOT NULL,
        hash     TEXT NOT NULL,
        PRIMARY KEY (chain_id, number)
    );

    CREATE TABLE checkpoints (
        chain_id INTEGER PRIMARY KEY,
        number   INTEGER NOT NULL,
        hash     TEXT NOT NULL
    );
    ",
    // 2: the postback outbox, written in the transaction that marks a payment paid.
    r#"
    CREATE TABLE deliveries (
        id              TEXT PRIMARY KEY,
        payment_id      TEXT NOT NULL UNIQUE REFERENCES payments(id),
        url             TEXT NOT NULL,
        body            TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        created_at      INTEGER NOT NULL,
        next_attempt_at INTEGER,
        delivered_at    INTEGER,
        last_error      TEXT
    );
    CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE next_attempt_at IS NOT NULL;
    "#,
    // 3: baskets (SPEC section 8) and provisional transfers (a challenge answer's
    // transaction, recorded before the scanner has seen its block).
    r#"
    CREATE TABLE baskets (
        id             TEXT PRIMARY KEY,
        secret_hash    BLOB NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
        customer_id    TEXT NOT NULL,
        shop_id        TEXT NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('open', 'checked_out', 'released')),
        revision       INTEGER NOT NULL DEFAULT 0,
        created_at     INTEGER NOT NULL,
        expires_at     INTEGER NOT NULL,
        contract_token TEXT,
        challenge      TEXT,
        payment_id     TEXT UNIQUE REFERENCES payments(id)
    );
    CREATE INDEX baskets_expiring ON baskets(expires_at) WHERE state != 'released';

    CREATE TABLE basket_lines (
        basket_id  TEXT NOT NULL REFERENCES baskets(id),
        position   INTEGER NOT NULL,
        product_id TEXT NOT NULL,
        refund     INTEGER NOT NULL CHECK (refund IN (0, 1)),
        count      INTEGER NOT NULL CHECK (count > 0),
        refund_of  TEXT REFERENCES payments(id),
        unlocks    TEXT NOT NULL,
        PRIMARY KEY (basket_id, position),
        UNIQUE (basket_id, product_id, refund)
    );

    CREATE TABLE refund_holds (
        payment_id TEXT NOT NULL REFERENCES payments(id),
        product_id TEXT NOT NULL,
        basket_id  TEXT NOT NULL REFERENCES baskets(id),
        PRIMARY KEY (payment_id, product_id)
    );
    CREATE INDEX refund_holds_by_basket ON refund_holds(basket_id);

    ALTER TABLE transfers ADD COLUMN provisional INTEGER NOT NULL DEFAULT 0;
    "#,
    // 4: Web Monetization credits: one row per incoming payment, and the unlocks
    // (receipts) they paid for.
    r#"
    CREATE TABLE wm_incoming (
        url        TEXT PRIMARY KEY,
        wallet     TEXT NOT NULL,
        received   TEXT NOT NULL,
        consumed   TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );

    CREATE TABLE wm_unlocks (
        id              TEXT PRIMARY KEY,
        hash            BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
        incoming_url    TEXT NOT NULL REFERENCES wm_incoming(url),
        scope           TEXT NOT NULL,
        amount          TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        access_ttl_secs INTEGER NOT NULL
    );
    "#,
    // 5: the watcher's tick reads unpaid claims only once they expire
    // (`OPEN_PAYMENTS`): a range of this index, never every claim.
    r#"
    CREATE INDEX payments_by_state_expiry ON payments (state, expires_at);
    DROP INDEX payments_by_state;
    "#,
];

/// Applies every migration newer than the database's `user_version`.
pub(super) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let target = i64::try_from(i + 1)
            .map_err(|_| StoreError::Unavailable("too many migrations".into()))?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        // Read inside the write lock: another process may have migrated meanwhile.
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .db()?;
        if version >= target {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Unavailable(format!("migration {target}: {e}")))?;
        tx.pragma_update(None, "user_version", target).db()?;
        tx.commit().db()?;
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .db()?;
    if usize::try_from(version).map_or(true, |v| v > MIGRATIONS.len()) {
        return Err(StoreError::Unavailable(format!(
            "database schema version {version} is newer than this tollgate ({})",
            MIGRATIONS.len()
        )));
    }
    Ok(())
}
