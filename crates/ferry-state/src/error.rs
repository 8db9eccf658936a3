//! The one error type of this crate.
//!
//! Every variant names the database it concerns, and SQL failures say what
//! ferry was doing ("record 200 intents", "load the pairs of folder 3"), so
//! a message read in a log is enough to act on. The engine treats any state
//! error as fatal for the account, except [`StateError::Locked`], which means
//! "another run is busy, try later" (exit 75).

use crate::ids::{FolderId, IntentId, PairId};
use crate::lock::LockError;
use std::path::PathBuf;

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Another run holds the account lock.
    #[error(transparent)]
    Locked(#[from] LockError),
    /// A file or directory of the state could not be created or changed.
    #[error("state database {}: cannot {what}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What ferry was doing.
        what: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// SQLite refused or failed an operation.
    #[error("state database {}: {what}: {source}", path.display())]
    Sql {
        /// The database.
        path: PathBuf,
        /// What ferry was doing.
        what: String,
        /// The underlying error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer ferry.
    #[error(
        "this state database ({}) was written by a newer ferry (schema {found}, this ferry knows \
         up to {known}); upgrade ferry, or move the file away to start over (ferry then re-pairs \
         messages by content and copies nothing twice)",
        path.display()
    )]
    TooNew {
        /// The database.
        path: PathBuf,
        /// The schema version in the file.
        found: u32,
        /// The newest schema version this code knows.
        known: u32,
    },
    /// The database is older than this code and was opened without upgrading.
    #[error(
        "state database {} has schema {found}, this ferry expects {known}; run `ferry sync` once \
         to upgrade it",
        path.display()
    )]
    TooOld {
        /// The database.
        path: PathBuf,
        /// The schema version in the file.
        found: u32,
        /// The schema version this code uses.
        known: u32,
    },
    /// The file is an SQLite database, but not one of ferry's.
    #[error(
        "{} is not a ferry state database (application id {application_id:#x}, {tables} tables); \
         point state_dir elsewhere or move the file away",
        path.display()
    )]
    Foreign {
        /// The database.
        path: PathBuf,
        /// The `PRAGMA application_id` found.
        application_id: i32,
        /// How many tables it has.
        tables: i64,
    },
    /// The database belongs to another account.
    #[error(
        "state database {} belongs to {recorded}, not to {now}: was it copied from another \
         account, or were two accounts' names swapped in the config? Give each account its own; \
         if it is the same mailbox under a new name, move the file away and the next run pairs \
         the messages again by Message-ID and size, deleting nothing",
        path.display()
    )]
    OtherOwner {
        /// The database.
        path: PathBuf,
        /// The identity recorded in it.
        recorded: String,
        /// The identity of the account that opened it.
        now: String,
    },
    /// A stored value is not one ferry could have written.
    #[error("state database {}: {what}", path.display())]
    Corrupt {
        /// The database.
        path: PathBuf,
        /// What is wrong, and where.
        what: String,
    },
    /// A value handed in cannot be stored as it is.
    #[error("state database {}: cannot store {what}", path.display())]
    Invalid {
        /// The database.
        path: PathBuf,
        /// The value, and why.
        what: String,
    },
    /// No folder pair has this id.
    #[error("state database {}: no folder pair {folder}", path.display())]
    NoSuchFolder {
        /// The database.
        path: PathBuf,
        /// The missing folder.
        folder: FolderId,
    },
    /// No message pair has this id.
    #[error("state database {}: no message pair {pair}", path.display())]
    NoSuchPair {
        /// The database.
        path: PathBuf,
        /// The missing pair.
        pair: PairId,
    },
    /// The intent does not exist or is no longer pending.
    #[error("state database {}: intent {intent} is not pending", path.display())]
    NotPending {
        /// The database.
        path: PathBuf,
        /// The intent.
        intent: IntentId,
    },
    /// A folder pair cannot be deleted while intents on it are pending.
    #[error(
        "state database {}: folder pair {folder} has {pending} pending intents; complete or \
         abandon them first",
        path.display()
    )]
    FolderBusy {
        /// The database.
        path: PathBuf,
        /// The folder.
        folder: FolderId,
        /// How many intents are pending on it.
        pending: u64,
    },
}

/// The result of a state operation.
pub type Result<T, E = StateError> = std::result::Result<T, E>;

impl StateError {
    /// Whether the file is damaged or no database at all (SQLite says so,
    /// or a stored value is one ferry could not have written): moving it
    /// away is the way out.
    pub fn is_damaged(&self) -> bool {
        match self {
            StateError::Corrupt { .. } => true,
            StateError::Sql { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
            ),
            _ => false,
        }
    }
}
