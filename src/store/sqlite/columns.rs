//! How values are stored in SQLite columns, and how rusqlite errors map to
//! [`StoreError`]: amounts as decimal strings of base units, states by name, hashes
//! as 32-byte blobs, `u64` refused (never wrapped) above `i64::MAX`.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Row, ToSql};

use crate::amount::Amount;
use crate::store::{StoreError, StoreResult};

/// Maps rusqlite errors: unique/primary-key violations are [`StoreError::Conflict`],
/// everything else [`StoreError::Unavailable`].
pub fn store_error(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if f.code == rusqlite::ErrorCode::ConstraintViolation
            && (f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
        {
            return StoreError::Conflict(e.to_string());
        }
    }
    StoreError::Unavailable(e.to_string())
}

pub(super) trait Db<T> {
    fn db(self) -> StoreResult<T>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> StoreResult<T> {
        self.map_err(store_error)
    }
}

/// An amount column: a decimal string of base units.
pub(super) struct DbAmount(pub(super) Amount);

impl FromSql for DbAmount {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FromSqlError::Other(format!("bad amount {s:?}").into()));
        }
        s.parse::<u128>()
            .map(|v| DbAmount(Amount(v)))
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// A nullable 32-byte hash column.
pub(super) struct DbHash(pub(super) Option<[u8; 32]>);

impl FromSql for DbHash {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Null => Ok(DbHash(None)),
            v => {
                let b = v.as_blob()?;
                <[u8; 32]>::try_from(b)
                    .map(|h| DbHash(Some(h)))
                    .map_err(|_| FromSqlError::InvalidBlobSize {
                        expected_size: 32,
                        blob_size: b.len(),
                    })
            }
        }
    }
}

/// A `u64` column, stored as SQLite's `INTEGER` (i64): values above `i64::MAX`
/// are refused on write, negative values on read (never wrapped).
#[derive(Debug, Clone, Copy)]
pub(super) struct U64(pub(super) u64);

impl ToSql for U64 {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        i64::try_from(self.0)
            .map(ToSqlOutput::from)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
    }
}

impl FromSql for U64 {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let v = value.as_i64()?;
        u64::try_from(v)
            .map(U64)
            .map_err(|_| FromSqlError::OutOfRange(v))
    }
}

pub(super) fn u64_col(r: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    r.get::<_, U64>(i).map(|v| v.0)
}

pub(super) fn opt_u64_col(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<u64>> {
    r.get::<_, Option<U64>>(i).map(|v| v.map(|v| v.0))
}

impl crate::store::shared::Cols for Row<'_> {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.get(i).db()
    }

    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.get(i).db()
    }

    fn opt_u64(&self, i: usize) -> StoreResult<Option<u64>> {
        opt_u64_col(self, i).db()
    }

    fn opt_hash(&self, i: usize) -> StoreResult<Option<[u8; 32]>> {
        self.get::<_, DbHash>(i).map(|h| h.0).db()
    }

    fn flag(&self, i: usize) -> StoreResult<bool> {
        self.get::<_, i64>(i).map(|v| v != 0).db()
    }
}

/// A shared row mapping's error, carried through rusqlite's row callbacks.
pub(super) fn user(e: StoreError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Null, Box::new(e))
}

/// Adapts a shared row mapping (`payment_from`, …) to rusqlite's `query_row` and
/// `query_map` callbacks.
macro_rules! mapped {
    ($f:path) => {
        |r: &rusqlite::Row<'_>| $f(r).map_err($crate::store::sqlite::columns::user)
    };
}
pub(super) use mapped;
