//! The crate's error type: every failure names the path it concerns.
//!
//! [`Error::NotFound`] is not a failure of the store: a file or directory
//! vanished between the listing and its use (a mail reader renamed it to
//! change a flag, or removed it). The caller rescans; [`Error::is_rescan`]
//! tells it so. Running out of space is its own variant,
//! [`Error::NoSpace`], so that it can be reported plainly.

use std::io;
use std::path::PathBuf;

use crate::layout::NameError;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file or directory is no longer there: it was renamed or removed
    /// by another program since it was listed. Rescan; this is not a
    /// failure of the store.
    #[error("{op} {path}: no longer there (renamed or removed meanwhile; rescan)")]
    NotFound {
        /// What was being done.
        op: &'static str,
        /// The path that vanished.
        path: PathBuf,
    },
    /// The file system is full (or the quota is exhausted).
    #[error("no space left on device: {op} {path}")]
    NoSpace {
        /// What was being done.
        op: &'static str,
        /// The file being written; it lies in the folder concerned.
        path: PathBuf,
        /// The system's error (ENOSPC or EDQUOT).
        source: io::Error,
    },
    /// The target of a rename already exists; nothing was overwritten.
    #[error("{op} {path}: already exists, not overwritten")]
    Exists {
        /// What was being done.
        op: &'static str,
        /// The path that exists.
        path: PathBuf,
    },
    /// Any other I/O error.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// Reading the message to deliver failed (the stream, not the disk).
    #[error("reading the message to deliver into {folder}: {source}")]
    Source {
        /// The folder the message was going to.
        folder: PathBuf,
        /// The stream's error.
        source: io::Error,
    },
    /// A directory that should be a Maildir folder has no `cur/`.
    #[error("{path}: not a Maildir folder (no cur/ directory)")]
    NotAFolder {
        /// The directory.
        path: PathBuf,
    },
    /// A folder to remove still holds something (a message, a file in
    /// `tmp/`); nothing was removed.
    #[error("{path}: not empty ({entry:?} is there); not removed")]
    NotEmpty {
        /// The directory that is not empty.
        path: PathBuf,
        /// One of the names in it.
        entry: std::ffi::OsString,
    },
    /// An operation that would remove or move the Maildir root itself (the
    /// maildir++ INBOX).
    #[error("{op} {path}: refused: it is the Maildir root")]
    Root {
        /// What was being done.
        op: &'static str,
        /// The root.
        path: PathBuf,
    },
    /// A path leads outside the Maildir root (through a symbolic link).
    #[error("{path}: refused: it leads outside the Maildir root {root}")]
    OutsideRoot {
        /// The path as given.
        path: PathBuf,
        /// The root it must stay in.
        root: PathBuf,
    },
    /// A message key that cannot be a Maildir unique name.
    #[error("{key:?} cannot be a Maildir message key: {reason}")]
    BadKey {
        /// The key as given.
        key: String,
        /// Why not.
        reason: &'static str,
    },
    /// A delivery was given up before its message was complete (the
    /// sending side failed); its `tmp/` file was removed.
    #[error("delivery of {key} given up before the message was complete")]
    Abandoned {
        /// The key it would have had.
        key: String,
    },
    /// A folder name was refused.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The file watcher failed.
    #[error("watching {path}: {source}")]
    Watch {
        /// The directory being watched.
        path: PathBuf,
        /// notify's error.
        source: notify::Error,
    },
}

impl Error {
    /// Whether the right reaction is a rescan: the file or directory
    /// vanished since it was listed.
    pub fn is_rescan(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Whether the file system ran out of space.
    pub fn is_no_space(&self) -> bool {
        matches!(self, Error::NoSpace { .. })
    }

    /// Classifies an I/O error on `path` while doing `op`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        match source.kind() {
            io::ErrorKind::NotFound => Error::NotFound { op, path },
            io::ErrorKind::AlreadyExists => Error::Exists { op, path },
            _ if is_no_space(&source) => Error::NoSpace { op, path, source },
            _ => Error::Io { op, path, source },
        }
    }
}

fn is_no_space(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || err.kind() == io::ErrorKind::StorageFull
}

/// Adds an operation and a path to an I/O result.
pub(crate) trait Context<T> {
    /// Classifies the error with [`Error::io`].
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_errno() {
        let nf = Error::io(
            "renaming",
            "/m/cur/x",
            io::Error::from(io::ErrorKind::NotFound),
        );
        assert!(nf.is_rescan());
        let full = Error::io(
            "writing",
            "/m/tmp/x",
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert!(full.is_no_space());
        assert!(full.to_string().contains("no space left"), "{full}");
        assert!(full.to_string().contains("/m/tmp/x"), "{full}");
        let other = Error::io("x", "/p", io::Error::from_raw_os_error(libc::EIO));
        assert!(!other.is_rescan() && !other.is_no_space());
    }
}
