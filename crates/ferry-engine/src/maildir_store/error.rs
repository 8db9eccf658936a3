//! The Maildir store's errors, and how far each reaches ([`ErrorClass`]).

use std::io;
use std::path::{Path, PathBuf};

use ferry_core::MessageKey;
use ferry_core::store::{ErrorClass, StoreError};
use ferry_maildir::NameError;

/// What went wrong in the Maildir store, with the folder (its local name)
/// and the message concerned; paths are in the ferry-maildir errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Maildir root cannot be opened or made.
    #[error("the Maildir root: {0}")]
    Root(#[source] Box<ferry_maildir::Error>),
    /// A local folder name that cannot be a Maildir folder.
    #[error("folder {name:?}: {source}")]
    Name {
        /// The name as given.
        name: String,
        /// Why it was refused.
        source: NameError,
    },
    /// There is no such folder (no directory with `cur/`).
    #[error("folder {name:?}: no such folder ({})", .path.display())]
    NoFolder {
        /// The folder's local name.
        name: String,
        /// Where it would be.
        path: PathBuf,
    },
    /// INBOX cannot be deleted or renamed.
    #[error("folder {name:?}: {op} INBOX is refused")]
    Inbox {
        /// The name as given.
        name: String,
        /// `deleting` or `renaming`.
        op: &'static str,
    },
    /// The message is not in the folder, even after a rescan.
    #[error("folder {folder:?}: no message {key} (not there even after a rescan)")]
    NoMessage {
        /// The folder's local name.
        folder: String,
        /// The key looked for.
        key: String,
    },
    /// A key that is not a Maildir name (a UID given to the Maildir store).
    #[error("folder {folder:?}: {key} is not a Maildir message key")]
    NotAName {
        /// The folder's local name.
        folder: String,
        /// The key as given.
        key: MessageKey,
    },
    /// The file yielded more or fewer bytes than were counted and announced
    /// before it was sent: it changed while it was read. The batch ends
    /// (the receiving store cannot take a message back half sent).
    #[error(
        "folder {folder:?}: message {key}: the file changed while it was read \
         ({announced} bytes announced, {read} read)"
    )]
    Changed {
        /// The folder's local name.
        folder: String,
        /// The message.
        key: String,
        /// The CRLF length counted before sending.
        announced: u64,
        /// What was read (at least) when the difference showed.
        read: u64,
    },
    /// The receiving store (the [`BodyTarget`](ferry_core::store::BodyTarget))
    /// failed; the batch ends.
    #[error("folder {folder:?}: message {key}: the receiving store failed: {source}")]
    Target {
        /// The folder read from.
        folder: String,
        /// The message being sent.
        key: MessageKey,
        /// The target's error.
        source: io::Error,
    },
    /// The sending store began a message and never ended it (it began the
    /// next one, or stopped): nothing was delivered for it.
    #[error(
        "folder {folder:?}: the message from {source_key} was begun but never ended; not delivered"
    )]
    Unfinished {
        /// The folder written to.
        folder: String,
        /// The message's key in the sending store.
        source_key: MessageKey,
    },
    /// A file operation failed (the path is in `source`).
    #[error("folder {folder:?}{}: {source}", key_part(.key))]
    Maildir {
        /// The folder's local name (empty for the whole tree).
        folder: String,
        /// The message concerned, if one was.
        key: Option<String>,
        /// What failed, and where.
        source: Box<ferry_maildir::Error>,
        /// How far it reaches (see [`classify`]).
        class: ErrorClass,
    },
}

fn key_part(key: &Option<String>) -> String {
    key.as_ref()
        .map(|k| format!(": message {k}"))
        .unwrap_or_default()
}

impl StoreError for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Root(_) | Error::Target { .. } => ErrorClass::Store,
            Error::Name { .. }
            | Error::NoFolder { .. }
            | Error::Inbox { .. }
            | Error::Changed { .. } => ErrorClass::Folder,
            Error::NoMessage { .. } | Error::NotAName { .. } | Error::Unfinished { .. } => {
                ErrorClass::Message
            }
            Error::Maildir { class, .. } => *class,
        }
    }
}

/// How far a file operation's failure reaches:
///
/// - **Store**: the disk is full, the file system is read-only, or the root
///   itself is unreadable or gone;
/// - **Message** (when the operation concerned one message, `message`): the
///   file vanished, its name is taken, it cannot be read;
/// - **Folder**: everything else, among them a vanished or unreadable
///   folder and permission errors (permissions are set on directories).
pub fn classify(error: &ferry_maildir::Error, root: &Path, message: bool) -> ErrorClass {
    use ferry_maildir::Error as E;
    match error {
        E::NoSpace { .. } => ErrorClass::Store,
        E::Io { path, .. } | E::NotFound { path, .. } if path == root => ErrorClass::Store,
        E::Io { source, .. } if source.kind() == io::ErrorKind::ReadOnlyFilesystem => {
            ErrorClass::Store
        }
        E::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
            ErrorClass::Folder
        }
        E::NotFound { .. }
        | E::Exists { .. }
        | E::BadKey { .. }
        | E::Source { .. }
        | E::Io { .. }
            if message =>
        {
            ErrorClass::Message
        }
        _ => ErrorClass::Folder,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_error(path: &str, kind: io::ErrorKind) -> ferry_maildir::Error {
        ferry_maildir::Error::Io {
            op: "reading",
            path: path.into(),
            source: io::Error::from(kind),
        }
    }

    #[test]
    fn classes_follow_the_reach() {
        let root = Path::new("/m");
        let gone = ferry_maildir::Error::NotFound {
            op: "renaming",
            path: "/m/A/cur/k:2,S".into(),
        };
        assert_eq!(classify(&gone, root, true), ErrorClass::Message);
        assert_eq!(classify(&gone, root, false), ErrorClass::Folder);
        let denied = io_error("/m/A/cur", io::ErrorKind::PermissionDenied);
        assert_eq!(classify(&denied, root, true), ErrorClass::Folder);
        let root_denied = io_error("/m", io::ErrorKind::PermissionDenied);
        assert_eq!(classify(&root_denied, root, false), ErrorClass::Store);
        let read_only = io_error("/m/A/tmp/k", io::ErrorKind::ReadOnlyFilesystem);
        assert_eq!(classify(&read_only, root, true), ErrorClass::Store);
        let eio = io_error("/m/A/cur/k", io::ErrorKind::Other);
        assert_eq!(classify(&eio, root, true), ErrorClass::Message);
    }
}
