//! The PostgreSQL schema: the same tables, columns and constraints as the SQLite
//! migrations (amounts as decimal strings of base units, hashes as 32-byte
//! `BYTEA`, integers as `BIGINT` refused above `i64::MAX`), versioned in
//! `tollgate_schema` and applied at start under a session advisory lock, so two
//! instances starting at once migrate once.

use tokio_postgres::NoTls;

use super::{pg, MIGRATE_LOCK};
use crate::store::{StoreError, StoreResult};

/// The schema migrations, in order. Migration `i` brings the schema from version
/// `i` to `i + 1` (recorded in `tollgate_schema`); applied migrations are never
/// edited, only appended to. Each mirrors the SQLite migration of the same number.
pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    );
    INSERT INTO meta (key, value) VALUES ('next_derivation_index', 0);

    CREATE TABLE payments (
        id                     TEXT PRIMARY KEY,
        derivation_index       BIGINT NOT NULL UNIQUE
                               CHECK (derivation_index BETWEEN 0 AND 4294967295),
        address                TEXT NOT NULL UNIQUE,
        address_lc             TEXT NOT NULL UNIQUE,
        contract_hash          BYTEA UNIQUE
                               CHECK (contract_hash IS NULL OR octet_length(contract_hash) = 32),
        contract_token         TEXT,
        scope                  TEXT,
        amount                 TEXT NOT NULL CHECK (amount ~ '^[0-9]+$'),
        received               TEXT NOT NULL DEFAULT '0' CHECK (received ~ '^[0-9]+$'),
        state                  TEXT NOT NULL CHECK (state IN ('new', 'seen', 'confirming',
                                   'paid', 'expired', 'paid_late', 'underpaid', 'refunded')),
        seen_at                BIGINT,
        paid_at                BIGINT,
        tx_hash                TEXT,
        confirmations          BIGINT NOT NULL DEFAULT 0,
        required_confirmations BIGINT NOT NULL,
        access_ttl_secs        BIGINT NOT NULL,
        created_at             BIGINT NOT NULL,
        expires_at             BIGINT NOT NULL,
        data                   TEXT,
        postback_url           TEXT
    );
    CREATE INDEX payments_by_state ON payments (state);

    CREATE TABLE transfers (
        chain_id     BIGINT NOT NULL,
        tx_hash      TEXT NOT NULL,
        log_index    BIGINT NOT NULL,
        block_number BIGINT NOT NULL,
        block_hash   TEXT NOT NULL,
        payment_id   TEXT NOT NULL REFERENCES payments (id),
        to_address   TEXT NOT NULL,
        from_address TEXT NOT NULL,
        value        TEXT NOT NULL CHECK (value ~ '^[0-9]+$'),
        seen_at      BIGINT NOT NULL,
        UNIQUE (chain_id, tx_hash, log_index)
    );
    CREATE INDEX transfers_by_payment ON transfers (payment_id);
    CREATE INDEX transfers_by_block ON transfers (chain_id, block_number);

    CREATE TABLE blocks (
        chain_id BIGINT NOT NULL,
        number   BIGINT NOT NULL,
        hash     TEXT NOT NULL,
        PRIMARY KEY (chain_id, number)
    );

    CREATE TABLE checkpoints (
        chain_id BIGINT PRIMARY KEY,
        number   BIGINT NOT NULL,
        hash     TEXT NOT NULL
    );
    ",
    // 2: the postback outbox, written in the transaction that marks a payment paid.
    "
    CREATE TABLE deliveries (
        id              TEXT PRIMARY KEY,
        payment_id      TEXT NOT NULL UNIQUE REFERENCES payments(id),
        url             TEXT NOT NULL,
        body            TEXT NOT NULL,
        attempts        BIGINT NOT NULL DEFAULT 0,
        created_at      BIGINT NOT NULL,
        next_attempt_at BIGINT,
        delivered_at    BIGINT,
        last_error      TEXT
    );
    CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE next_attempt_at IS NOT NULL;
    ",
    // 3: baskets and provisional transfers.
    "
    CREATE TABLE baskets (
        id             TEXT PRIMARY KEY,
        secret_hash    BYTEA NOT NULL UNIQUE CHECK (octet_length(secret_hash) = 32),
        customer_id    TEXT NOT NULL,
        shop_id        TEXT NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('open', 'checked_out', 'released')),
        revision       BIGINT NOT NULL DEFAULT 0,
        created_at     BIGINT NOT NULL,
        expires_at     BIGINT NOT NULL,
        contract_token TEXT,
        challenge      TEXT,
        payment_id     TEXT UNIQUE REFERENCES payments(id)
    );
    CREATE INDEX baskets_expiring ON baskets(expires_at) WHERE state != 'released';

    CREATE TABLE basket_lines (
        basket_id  TEXT NOT NULL REFERENCES baskets(id),
        position   BIGINT NOT NULL,
        product_id TEXT NOT NULL,
        refund     BOOLEAN NOT NULL,
        count      BIGINT NOT NULL CHECK (count > 0),
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

    ALTER TABLE transfers ADD COLUMN provisional BOOLEAN NOT NULL DEFAULT false;
    ",
    // 4: Web Monetization credits and the unlocks they paid for.
    "
    CREATE TABLE wm_incoming (
        url        TEXT PRIMARY KEY,
        wallet     TEXT NOT NULL,
        received   TEXT NOT NULL,
        consumed   TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    );

    CREATE TABLE wm_unlocks (
        id              TEXT PRIMARY KEY,
        hash            BYTEA NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
        incoming_url    TEXT NOT NULL REFERENCES wm_incoming(url),
        scope           TEXT NOT NULL,
        amount          TEXT NOT NULL,
        created_at      BIGINT NOT NULL,
        access_ttl_secs BIGINT NOT NULL
    );
    ",
];

/// Applies every pending migration on a connection of its own, holding the
/// session advisory lock [`MIGRATE_LOCK`] meanwhile (the lock goes with the
/// connection, also when a migration fails). Each migration and its version row
/// commit together.
pub(super) async fn migrate(config: &tokio_postgres::Config) -> StoreResult<()> {
    let (mut client, conn) = config
        .connect(NoTls)
        .await
        .map_err(|e| StoreError::Unavailable(format!("connecting to PostgreSQL: {e}")))?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let out = migrate_on(&mut client).await;
    drop(client);
    let _ = task.await;
    out
}

async fn migrate_on(client: &mut tokio_postgres::Client) -> StoreResult<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK])
        .await
        .map_err(pg)?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS tollgate_schema (
                 version    INTEGER PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(pg)?;
    let version: i32 = client
        .query_one("SELECT COALESCE(MAX(version), 0) FROM tollgate_schema", &[])
        .await
        .map_err(pg)?
        .try_get(0)
        .map_err(pg)?;
    let known = i32::try_from(MIGRATIONS.len())
        .map_err(|_| StoreError::Unavailable("too many migrations".into()))?;
    if version > known {
        return Err(StoreError::Unavailable(format!(
            "database schema version {version} is newer than this tollgate ({known})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let target = i32::try_from(i + 1)
            .map_err(|_| StoreError::Unavailable("too many migrations".into()))?;
        if target <= version {
            continue;
        }
        let tx = client.transaction().await.map_err(pg)?;
        tx.batch_execute(sql)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration {target}: {e}")))?;
        tx.execute(
            "INSERT INTO tollgate_schema (version) VALUES ($1)",
            &[&target],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
    }
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK])
        .await
        .map_err(pg)?;
    Ok(())
}
