//! Small helpers shared by the modules that talk to SQLite: error context,
//! the clock, and the text form of a [`Side`].

use crate::error::StateError;
use ferry_core::Side;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Adds the database path and what ferry was doing to an SQLite error.
pub(crate) trait SqlContext<T> {
    /// With a fixed description.
    fn ctx(self, path: &Path, what: &str) -> Result<T, StateError>;
    /// With a description built only on failure.
    fn ctx_with(self, path: &Path, what: impl FnOnce() -> String) -> Result<T, StateError>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn ctx(self, path: &Path, what: &str) -> Result<T, StateError> {
        self.ctx_with(path, || what.to_string())
    }

    fn ctx_with(self, path: &Path, what: impl FnOnce() -> String) -> Result<T, StateError> {
        self.map_err(|source| StateError::Sql {
            path: path.to_path_buf(),
            what: what(),
            source,
        })
    }
}

/// Milliseconds since the epoch (0 for a clock set before 1970).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The column text of a side.
pub(crate) fn side_text(side: Side) -> &'static str {
    // Spelled out, not `Side::name`: the database must not change when a
    // display name does.
    match side {
        Side::Far => "far",
        Side::Near => "near",
    }
}

/// The side a column names.
pub(crate) fn side_from_text(text: &str) -> Option<Side> {
    Side::BOTH.into_iter().find(|&side| side_text(side) == text)
}

/// Starts a write transaction that takes the write lock at once
/// (`BEGIN IMMEDIATE`), so it can never fail half-way for want of it.
pub(crate) fn write_tx(
    conn: &mut rusqlite::Connection,
) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}
