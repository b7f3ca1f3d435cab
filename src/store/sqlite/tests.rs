//! SQLite-specific checks (the store suite in tests/store_suite.rs covers the trait).
use super::*;

fn user_version(store: &SqliteStore) -> i64 {
    let conn = store.conn.lock().unwrap();
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn file_databases_are_wal_synchronous_full_with_foreign_keys() {
    let path = std::env::temp_dir().join(format!(
        "tollgate-sqlite-unit-{}-{}.db",
        std::process::id(),
        line!()
    ));
    {
        let store = SqliteStore::open(&path).unwrap();
        let conn = store.conn.lock().unwrap();
        let get = |name: &str| -> String {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| format!("{v:?}"))
            .unwrap()
        };
        assert_eq!(get("journal_mode"), "Text(\"wal\")");
        assert_eq!(get("synchronous"), "Integer(2)"); // FULL
        assert_eq!(get("foreign_keys"), "Integer(1)");
        assert_eq!(get("busy_timeout"), "Integer(5000)");
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn migrations_set_the_schema_version() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert_eq!(user_version(&store), MIGRATIONS.len() as i64);
}

#[test]
fn reopening_does_not_rerun_migrations_and_newer_schemas_are_refused() {
    let path = std::env::temp_dir().join(format!(
        "tollgate-sqlite-unit-{}-{}.db",
        std::process::id(),
        line!()
    ));
    let _ = std::fs::remove_file(&path);
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(user_version(&store), MIGRATIONS.len() as i64);
    }
    {
        // Reopening applies nothing (the initial INSERT would fail if rerun).
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(user_version(&store), MIGRATIONS.len() as i64);
        let conn = store.conn.lock().unwrap();
        conn.pragma_update(None, "user_version", MIGRATIONS.len() as i64 + 1)
            .unwrap();
    }
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::Unavailable(_))
    ));
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn corrupt_amounts_are_errors_not_panics() {
    let store = SqliteStore::open_in_memory().unwrap();
    let conn = store.conn.lock().unwrap();
    conn.execute(
        "INSERT INTO payments (id, derivation_index, address, address_lc, amount, state, \
         required_confirmations, access_ttl_secs, created_at, expires_at) \
         VALUES ('p', 0, 'A', 'a', '1.5', 'new', 1, 1, 1, 1)",
        [],
    )
    .unwrap();
    assert!(payment_by_id(&conn, "p").is_err());
}

// Rules out: a flood of unpaid claims growing what every watcher tick reads. The
// tick's selection reads `new` payments only through the partial index on their
// expiry (never a scan of every claim), and `seen`/`confirming` ones by state.
#[test]
fn the_ticks_selection_never_scans_unpaid_claims() {
    let store = SqliteStore::open_in_memory().unwrap();
    let conn = store.conn.lock().unwrap();
    let plan: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", sql::OPEN_PAYMENTS))
        .unwrap()
        .query_map(params![U64(0)], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        plan.iter()
            .any(|p| p.contains("payments_by_state_expiry (state=? AND expires_at<?)")),
        "{plan:?}"
    );
    assert!(
        plan.iter().all(|p| !p.starts_with("SCAN payments")),
        "{plan:?}"
    );
}
