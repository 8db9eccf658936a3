//! Counts for `ferry status`: per folder pair, its pairs and pending
//! intents, and when it was last synced.
//!
//! [`State::read_status`] reads them without the account lock, read-only, so
//! `ferry status` works while a sync is running (WAL lets a reader see the
//! last committed state).

use crate::db::{State, open_read_only};
use crate::error::Result;
use crate::folders::{Folder, load_folders};
use crate::ids::FolderId;
use crate::sql::SqlContext;
use rusqlite::Connection;
use std::collections::HashMap;
use std::path::Path;

/// What `ferry status` shows of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Every folder pair, by id.
    pub folders: Vec<FolderStatus>,
    /// Pending intents over all folders: left by a run that crashed or is
    /// running now.
    pub pending_intents: u64,
}

impl Status {
    /// When a folder was last synced, the latest over all folders
    /// (milliseconds since the epoch).
    pub fn last_sync_ms(&self) -> Option<i64> {
        self.folders
            .iter()
            .filter_map(|f| f.folder.last_sync_ms)
            .max()
    }

    /// Message pairs over all folders.
    pub fn pairs(&self) -> u64 {
        self.folders.iter().map(|f| f.pairs).sum()
    }
}

/// One folder pair's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderStatus {
    /// The folder pair, with its markers and last sync time.
    pub folder: Folder,
    /// Its message pairs.
    pub pairs: u64,
    /// Of those, messages removed but awaiting expunge on one side.
    pub awaiting_expunge: u64,
    /// Of those, pairs that know their message on one side only (stored
    /// where the new key was not reported).
    pub incomplete: u64,
    /// Pending intents in it.
    pub pending_intents: u64,
}

impl State {
    /// The counts of this account.
    pub fn status(&self) -> Result<Status> {
        read(&self.conn, &self.path)
    }

    /// The counts of the account whose database is `path`, read without
    /// the lock and without changing anything; `None` when there is no
    /// database yet. Refuses a database of another schema version.
    pub fn read_status(path: &Path) -> Result<Option<Status>> {
        open_read_only(path)?
            .map(|conn| read(&conn, path))
            .transpose()
    }
}

fn read(conn: &Connection, path: &Path) -> Result<Status> {
    let what = "count pairs and intents";
    // One read transaction, so the counts agree with each other.
    conn.execute_batch("BEGIN").ctx(path, what)?;
    let counts = count(conn, path);
    conn.execute_batch("COMMIT").ctx(path, what)?;
    counts
}

fn count(conn: &Connection, path: &Path) -> Result<Status> {
    let what = "count pairs and intents";
    // Three queries, each answered from an index (`pairs_folder`, and the
    // partial `pairs_awaiting_expunge` and `pairs_incomplete`), not from
    // the pair rows.
    let per_folder = |sql: &str| -> rusqlite::Result<HashMap<i64, u64>> {
        let mut stmt = conn.prepare_cached(sql)?;
        let counts = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        counts.collect()
    };
    let pairs = per_folder("SELECT folder, count(*) FROM pairs GROUP BY folder").ctx(path, what)?;
    let awaiting = per_folder(
        "SELECT folder, count(*) FROM pairs WHERE awaiting_expunge IS NOT NULL GROUP BY folder",
    )
    .ctx(path, what)?;
    let incomplete = per_folder(
        "SELECT folder, count(*) FROM pairs WHERE (far_uid IS NULL AND far_key IS NULL) \
         OR (near_uid IS NULL AND near_key IS NULL) GROUP BY folder",
    )
    .ctx(path, what)?;
    let pending: HashMap<i64, u64> = conn
        .prepare_cached(
            "SELECT folder, count(*) FROM intents WHERE state = 'pending' GROUP BY folder",
        )
        .and_then(|mut stmt| {
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .ctx(path, what)?;
    let folders = load_folders(conn, path)?
        .into_iter()
        .map(|folder| {
            let FolderId(id) = folder.id;
            let pairs = pairs.get(&id).copied().unwrap_or_default();
            let awaiting_expunge = awaiting.get(&id).copied().unwrap_or_default();
            FolderStatus {
                folder,
                pairs,
                awaiting_expunge,
                incomplete: incomplete.get(&id).copied().unwrap_or_default(),
                pending_intents: pending.get(&id).copied().unwrap_or_default(),
            }
        })
        .collect();
    Ok(Status {
        folders,
        pending_intents: pending.values().sum(),
    })
}
