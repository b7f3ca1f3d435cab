//! The PostgreSQL schema: the SQLite migrations themselves, translated where the
//! dialects differ ([`migration`]): the same tables, columns and constraints
//! (amounts as decimal strings of base units, hashes as 32-byte `BYTEA`, integers
//! as `BIGINT` refused above `i64::MAX`), followed by PostgreSQL's own
//! migrations ([`STEPS`]), versioned in `tollgate_schema` and applied at start
//! under a session advisory lock, so two instances starting at once migrate once.

use tokio_postgres::NoTls;

use super::{pg, MIGRATE_LOCK};
use crate::store::sqlite::MIGRATIONS;
use crate::store::{StoreError, StoreResult};

/// One PostgreSQL migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// SQLite migration `i` ([`MIGRATIONS`]), translated by [`migration`].
    Shared(usize),
    /// A migration of PostgreSQL's own (what only a fleet needs).
    Own(&'static str),
}

/// The PostgreSQL migrations in order: step `i` brings the schema from version `i`
/// to `i + 1`. Applied steps are never edited or reordered, only appended to: a
/// new SQLite migration is appended here as the next `Shared` step (a unit test
/// checks that every SQLite migration is here once, in order).
pub const STEPS: &[Step] = &[
    Step::Shared(0),
    Step::Shared(1),
    Step::Shared(2),
    Step::Shared(3),
    Step::Own(PAID_NOTIFY),
    Step::Shared(4),
];

/// Version 5: every change that takes back (or alters) a paid fact notifies
/// [`super::listen::PAID_CHANNEL`] with the contract hash, in lowercase hex, from
/// its own transaction, so the notification is delivered if and only if the change
/// commits (and after it: a read on notice sees it). The changes:
/// * a payment that unlocked (`paid`, `paid_late`) changes state or `paid_at` (a
///   reorg revert, a refresh): its own hash;
/// * a payment starts or stops unlocking: the hashes of the payments whose
///   products the basket it paid refunds (a refund becomes final, or is undone);
/// * a basket is linked to an unlocking payment (a checkout with nothing due), and
///   a refund hold is taken or dropped under a basket whose payment unlocks: the
///   hashes of the payments refunded.
const PAID_NOTIFY: &str = r#"
CREATE FUNCTION tollgate_notify_hold(held_payment TEXT, held_by TEXT) RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tollgate_paid', encode(p.contract_hash, 'hex'))
       FROM payments p
      WHERE p.id = held_payment AND p.contract_hash IS NOT NULL
        AND EXISTS (SELECT 1 FROM baskets b JOIN payments bp ON bp.id = b.payment_id
                     WHERE b.id = held_by AND bp.state IN ('paid', 'paid_late'));
END $$;

CREATE FUNCTION tollgate_payment_changed() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.contract_hash IS NOT NULL AND OLD.state IN ('paid', 'paid_late') THEN
        PERFORM pg_notify('tollgate_paid', encode(NEW.contract_hash, 'hex'));
    END IF;
    IF (OLD.state IN ('paid', 'paid_late')) <> (NEW.state IN ('paid', 'paid_late')) THEN
        PERFORM pg_notify('tollgate_paid', encode(p.contract_hash, 'hex'))
           FROM baskets b JOIN refund_holds h ON h.basket_id = b.id
           JOIN payments p ON p.id = h.payment_id
          WHERE b.payment_id = NEW.id AND p.contract_hash IS NOT NULL;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER payments_paid_notify AFTER UPDATE ON payments FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.paid_at IS DISTINCT FROM NEW.paid_at)
    EXECUTE FUNCTION tollgate_payment_changed();

CREATE FUNCTION tollgate_basket_paid_by() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM payments WHERE id IN (OLD.payment_id, NEW.payment_id)
                AND state IN ('paid', 'paid_late')) THEN
        PERFORM pg_notify('tollgate_paid', encode(p.contract_hash, 'hex'))
           FROM refund_holds h JOIN payments p ON p.id = h.payment_id
          WHERE h.basket_id = NEW.id AND p.contract_hash IS NOT NULL;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER baskets_paid_notify AFTER UPDATE OF payment_id ON baskets FOR EACH ROW
    WHEN (OLD.payment_id IS DISTINCT FROM NEW.payment_id)
    EXECUTE FUNCTION tollgate_basket_paid_by();

CREATE FUNCTION tollgate_hold_changed() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM tollgate_notify_hold(OLD.payment_id, OLD.basket_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM tollgate_notify_hold(NEW.payment_id, NEW.basket_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER refund_holds_paid_notify AFTER INSERT OR UPDATE OR DELETE ON refund_holds
    FOR EACH ROW EXECUTE FUNCTION tollgate_hold_changed();
"#;

/// Migration `i` of the SQLite store ([`crate::store::sqlite::MIGRATIONS`]) in
/// PostgreSQL's dialect: the schema is written once, and only the type names that
/// differ are translated (`BLOB` → `BYTEA` with `octet_length`, `INTEGER` →
/// `BIGINT`, so every `u64` column holds up to `i64::MAX` as on SQLite). Booleans
/// stay `0`/`1` integers with their checks, as on SQLite. Where it stands in the
/// PostgreSQL versions is [`STEPS`]'s to say.
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
    let known = i32::try_from(STEPS.len())
        .map_err(|_| StoreError::Unavailable("too many migrations".into()))?;
    if version > known {
        return Err(StoreError::Unavailable(format!(
            "database schema version {version} is newer than this tollgate ({known})"
        )));
    }
    for (i, step) in STEPS.iter().enumerate() {
        let target = i32::try_from(i + 1)
            .map_err(|_| StoreError::Unavailable("too many migrations".into()))?;
        if target <= version {
            continue;
        }
        let sql = match *step {
            Step::Shared(i) => migration(MIGRATIONS.get(i).ok_or_else(|| {
                StoreError::Unavailable(format!("migration {target}: no SQLite migration {i}"))
            })?),
            Step::Own(sql) => sql.to_string(),
        };
        let tx = client.transaction().await.map_err(pg)?;
        tx.batch_execute(&sql)
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

#[cfg(test)]
mod tests {
    use super::*;

    // Rules out: a SQLite migration that PostgreSQL never applies, or applies out of
    // order (a new one must be appended to STEPS).
    #[test]
    fn every_sqlite_migration_is_a_step_once_in_order() {
        let shared: Vec<usize> = STEPS
            .iter()
            .filter_map(|s| match s {
                Step::Shared(i) => Some(*i),
                Step::Own(_) => None,
            })
            .collect();
        assert_eq!(shared, (0..MIGRATIONS.len()).collect::<Vec<_>>());
    }

    #[test]
    fn the_triggers_notify_the_channel_the_listener_listens_on() {
        let channel = format!("pg_notify('{}'", super::super::listen::PAID_CHANNEL);
        assert!(PAID_NOTIFY.contains(&channel));
        assert!(!PAID_NOTIFY.replace(&channel, "").contains("pg_notify('"));
    }
}
