//! Checking the database file itself, for tests and `ferry doctor`.

use crate::db::State;
use crate::error::Result;
use crate::sql::SqlContext;

impl State {
    /// Runs SQLite's `integrity_check` and `foreign_key_check`; returns the
    /// problems found, none when the file is sound.
    pub fn check_integrity(&self) -> Result<Vec<String>> {
        let what = "check the database's integrity";
        let mut problems: Vec<String> = self
            .conn
            .prepare("PRAGMA integrity_check")
            .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
            .ctx(&self.path, what)?;
        problems.retain(|line| line != "ok");
        let orphans: Vec<String> = self
            .conn
            .prepare("PRAGMA foreign_key_check")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    let table: String = row.get(0)?;
                    let rowid: Option<i64> = row.get(1)?;
                    let parent: String = row.get(2)?;
                    Ok(format!(
                        "{table} row {rowid:?} points at a missing {parent} row"
                    ))
                })?
                .collect()
            })
            .ctx(&self.path, what)?;
        problems.extend(orphans);
        Ok(problems)
    }
}
