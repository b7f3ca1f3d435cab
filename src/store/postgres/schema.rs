//! The PostgreSQL schema: the SQLite migrations themselves, translated where the
//! dialects differ ([`migration`]): the same tables, columns and constraints
//! (amounts as decimal strings of base units, hashes as 32-byte `BYTEA`, integers
//! as `BIGINT` refused above `i64::MAX`), versioned in `tollgate_schema` and
//! applied at start under a session advisory lock, so two instances starting at
//! once migrate once.

use tokio_postgres::NoTls;

use super::{pg, MIGRATE_LOCK};
use crate::store::sqlite::MIGRATIONS;
use crate::store::{StoreError, StoreResult};

/// Migration `i` of the SQLite store ([`crate::store::sqlite::MIGRATIONS`]) in
/// PostgreSQL's dialect: the schema is written once, and only the type names that
/// differ are translated (`BLOB` → `BYTEA` with `octet_length`, `INTEGER` →
/// `BIGINT`, so every `u64` column holds up to `i64::MAX` as on SQLite). Booleans
/// stay `0`/`1` integers with their checks, as on SQLite. Migration `i` brings
/// the schema from version `i` to `i + 1`, recorded in `tollgate_schema`.
pub fn migration(sqlite: &str) -> String {
    sqlite
        .replace("BLOB", "BYTEA")
        .replace("length(", "octet_length(")
        .replace("INTEGER", "BIGINT")
}

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
        tx.batch_execute(&migration(sql))
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
