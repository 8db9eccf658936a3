//! The schema version and its forward migrations.
//!
//! The version lives in `PRAGMA user_version`; [`MIGRATIONS`] is an
//! append-only list of SQL steps, step `n` taking a database from version
//! `n` to `n + 1`. Opening runs the missing steps in one `BEGIN EXCLUSIVE`
//! transaction, so a crash mid-upgrade leaves the old version intact. A
//! database newer than this code is refused, never touched (cargo's and
//! Firefox application-services' discipline). `PRAGMA application_id` marks
//! the file as ferry's, so a foreign SQLite file is refused too.
//!
//! Foreign keys are enforced while migrating; a future step that rebuilds a
//! table must account for that (SQLite's "making other kinds of table schema
//! changes" procedure) rather than switch them off here.
//!
//! Every released version has a fixture under `tests/fixtures/`, made by
//! the `generate_fixture` test of `tests/fixtures.rs`, and a test that
//! upgrades it.

use crate::error::{Result, StateError};
use crate::sql::SqlContext;
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// The migration steps, oldest first. Never edit or reorder a released
/// step: append a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001-initial.sql"),
    include_str!("migrations/0002-owner.sql"),
];

/// Indexes that only make reads faster, created on every open where they
/// are missing (no schema version: a database without them reads the same,
/// and `ferry status` or an older ferry need not refuse it).
///
/// `pairs_awaiting_expunge`: every run counts each folder's pairs and those
/// awaiting an expunge (few or none); `pairs_folder` answers the first from
/// the index alone, this partial index the second without reading every
/// pair row (about 4 ms of a 30 ms no-op at 20,000 messages).
///
/// `pairs_incomplete`: pairs that know their message on one side only
/// (few or none), counted the same way; a folder without any can be
/// prepared from its changes alone.
const SPEED_INDEXES: &str = "CREATE INDEX IF NOT EXISTS pairs_awaiting_expunge \
    ON pairs (folder) WHERE awaiting_expunge IS NOT NULL; \
    CREATE INDEX IF NOT EXISTS pairs_incomplete ON pairs (folder) \
    WHERE (far_uid IS NULL AND far_key IS NULL) OR (near_uid IS NULL AND near_key IS NULL);";

/// The schema version this code writes and reads.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// `PRAGMA application_id` of a ferry state database: "FRRY".
pub(crate) const APPLICATION_ID: i32 = 0x4652_5259;

/// The version and owner recorded in a database file.
pub(crate) struct Header {
    version: u32,
    application_id: i32,
    tables: i64,
}

/// Reads the version, application id and table count.
pub(crate) fn header(conn: &Connection, path: &Path) -> Result<Header> {
    let what = "read the schema version";
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .ctx(path, what)?;
    let application_id = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .ctx(path, what)?;
    let tables = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |row| row.get(0),
        )
        .ctx(path, what)?;
    let version = u32::try_from(version).map_err(|_| StateError::Corrupt {
        path: path.to_path_buf(),
        what: format!("schema version {version} is not a version"),
    })?;
    Ok(Header {
        version,
        application_id,
        tables,
    })
}

/// Refuses a file that is not ferry's, or is newer than this code.
pub(crate) fn check_readable(header: &Header, path: &Path) -> Result<()> {
    let fresh = header.application_id == 0 && header.version == 0 && header.tables == 0;
    if header.application_id != APPLICATION_ID && !fresh {
        return Err(StateError::Foreign {
            path: path.to_path_buf(),
            application_id: header.application_id,
            tables: header.tables,
        });
    }
    if header.version > SCHEMA_VERSION {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found: header.version,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Refuses a file that this code cannot read without upgrading it.
pub(crate) fn check_current(header: &Header, path: &Path) -> Result<()> {
    check_readable(header, path)?;
    if header.version < SCHEMA_VERSION {
        return Err(StateError::TooOld {
            path: path.to_path_buf(),
            found: header.version,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Brings the database to [`SCHEMA_VERSION`] in one exclusive transaction;
/// returns the version it had.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<u32> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Exclusive)
        .ctx(path, "lock the database to check its schema")?;
    // Read under the exclusive lock: nobody can migrate between check and
    // upgrade.
    let found = header(&tx, path)?;
    check_readable(&found, path)?;
    let upgrade = found.version != SCHEMA_VERSION;
    if upgrade {
        for (step, sql) in MIGRATIONS.iter().enumerate().skip(found.version as usize) {
            tx.execute_batch(sql).ctx_with(path, || {
                format!("upgrade the schema to version {}", step + 1)
            })?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .ctx(path, "mark the database as ferry's")?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .ctx(path, "record the schema version")?;
    }
    tx.execute_batch(SPEED_INDEXES)
        .ctx(path, "create the indexes ferry reads by")?;
    tx.commit().ctx(path, "commit the schema upgrade")?;
    if upgrade {
        tracing::info!(
            path = %path.display(),
            from = found.version,
            to = SCHEMA_VERSION,
            "state schema upgraded"
        );
    }
    Ok(found.version)
}
