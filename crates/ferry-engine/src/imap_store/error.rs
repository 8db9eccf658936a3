//! The IMAP store's errors, and how far each reaches.
//!
//! A NO or BAD ends one command and says, through its response code, what
//! it concerns: a missing folder (NONEXISTENT, TRYCREATE) or a folder the
//! user may not touch (NOPERM) is the folder's problem; anything else
//! refused for a message (OVERQUOTA, TOOBIG, a vanished message) is that
//! message's. Everything that ends the connection (lost, timed out, BYE,
//! login refused, the server breaking the protocol) is the store's.

use ferry_core::MessageKey;
use ferry_core::store::{ErrorClass, StoreError};
use ferry_imap::proto::response::ResponseCode;
use std::fmt;
use std::io;

/// A NO or BAD, kept whole so that one refusal of a command can be
/// reported for each message it named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The command's verb.
    pub command: String,
    /// The response code, if any.
    pub code: Option<ResponseCode>,
    /// The server's text.
    pub text: String,
    /// Whether it was BAD (the server did not understand) rather than NO.
    pub bad: bool,
}

impl Refusal {
    /// The refusal in `error`, or the error back when it ended more than
    /// its command.
    pub fn from_imap(error: ferry_imap::Error) -> Result<Refusal, ferry_imap::Error> {
        match error {
            ferry_imap::Error::No {
                command,
                code,
                text,
            } => Ok(Refusal {
                command,
                code,
                text,
                bad: false,
            }),
            ferry_imap::Error::Bad {
                command,
                code,
                text,
            } => Ok(Refusal {
                command,
                code,
                text,
                bad: true,
            }),
            other => Err(other),
        }
    }

    fn is(&self, codes: &[ResponseCode]) -> bool {
        self.code.as_ref().is_some_and(|c| codes.contains(c))
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.bad { "rejected" } else { "refused" };
        write!(f, "the server {how} {}: {}", self.command, self.text)?;
        match &self.code {
            Some(code) => write!(f, " [{}]", code.name()),
            None => Ok(()),
        }
    }
}

/// What went wrong in the IMAP store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapStoreError {
    /// The connection failed or the session cannot go on (lost, timed out,
    /// BYE, login refused, protocol broken).
    #[error(transparent)]
    Session(ferry_imap::Error),
    /// An earlier failure left the session unusable.
    #[error("the IMAP session is unusable: {reason}")]
    Unusable {
        /// What broke it.
        reason: String,
    },
    /// The folder does not exist (NONEXISTENT, TRYCREATE).
    #[error("folder {folder:?} does not exist on the server: {refusal}")]
    NoSuchFolder {
        /// The local folder name.
        folder: String,
        /// The server's answer.
        refusal: Box<Refusal>,
    },
    /// A folder of that name exists already (ALREADYEXISTS).
    #[error("folder {folder:?} already exists on the server: {refusal}")]
    FolderExists {
        /// The local folder name.
        folder: String,
        /// The server's answer.
        refusal: Box<Refusal>,
    },
    /// The server refused an operation on a folder (NOPERM, or a NO
    /// without a code).
    #[error("folder {folder:?}: {refusal}")]
    FolderRefused {
        /// The local folder name.
        folder: String,
        /// The server's answer.
        refusal: Box<Refusal>,
    },
    /// The folder's UIDVALIDITY changed since its snapshot: its UIDs may
    /// name other messages now, so nothing is done there in this run.
    #[error(
        "the server changed the UIDVALIDITY of folder {folder:?} during this run ({seen} -> {now}); \
         nothing more is done there now, the next run pairs its messages again"
    )]
    ValidityChanged {
        /// The local folder name.
        folder: String,
        /// What the snapshot saw.
        seen: u32,
        /// What the server says now (0: none).
        now: u32,
    },
    /// A folder ferry was asked to delete still holds messages.
    #[error("folder {folder:?} is not empty ({messages} messages); it was not deleted")]
    NotEmpty {
        /// The local folder name.
        folder: String,
        /// How many messages it holds.
        messages: u32,
    },
    /// A folder name that cannot be mapped to the server.
    #[error("folder {name:?} cannot be used on this server: {problem}")]
    BadName {
        /// The local name.
        name: String,
        /// Why.
        problem: &'static str,
    },
    /// The server refused one message (OVERQUOTA, TOOBIG, ...).
    #[error("{}in {folder:?}: {refusal}", key_prefix(.key))]
    MessageRefused {
        /// The local folder name.
        folder: String,
        /// The message, when the refusal concerns one.
        key: Option<MessageKey>,
        /// The server's answer.
        refusal: Box<Refusal>,
    },
    /// The message is not (or no longer) in the folder.
    #[error("{key} is no longer in folder {folder:?}")]
    Vanished {
        /// The local folder name.
        folder: String,
        /// The message.
        key: MessageKey,
    },
    /// A key that is not an IMAP UID (a Maildir name given to the IMAP store).
    #[error("{key} is not an IMAP UID")]
    NotAUid {
        /// The key.
        key: MessageKey,
    },
    /// The [`BodyTarget`](ferry_core::store::BodyTarget) failed for one
    /// message.
    #[error("{key} could not be stored where it was sent: {source}")]
    Target {
        /// The message.
        key: MessageKey,
        /// The target's error.
        source: io::Error,
    },
}

fn key_prefix(key: &Option<MessageKey>) -> String {
    key.as_ref().map(|k| format!("{k} ")).unwrap_or_default()
}

impl StoreError for ImapStoreError {
    fn class(&self) -> ErrorClass {
        use ImapStoreError::*;
        match self {
            Session(_) | Unusable { .. } => ErrorClass::Store,
            NoSuchFolder { .. }
            | FolderExists { .. }
            | FolderRefused { .. }
            | NotEmpty { .. }
            | ValidityChanged { .. }
            | BadName { .. } => ErrorClass::Folder,
            MessageRefused { .. } | Vanished { .. } | NotAUid { .. } | Target { .. } => {
                ErrorClass::Message
            }
        }
    }
}

impl ImapStoreError {
    /// An error of an operation on `folder` as a whole.
    pub(crate) fn folder(folder: &str, error: ferry_imap::Error) -> ImapStoreError {
        match Refusal::from_imap(error) {
            Ok(refusal) => Self::folder_refused(folder, refusal),
            Err(other) => ImapStoreError::Session(other),
        }
    }

    /// A refusal of an operation on `folder` as a whole.
    pub(crate) fn folder_refused(folder: &str, refusal: Refusal) -> ImapStoreError {
        let folder = folder.to_string();
        let refusal = Box::new(refusal);
        if refusal.is(&[ResponseCode::NonExistent, ResponseCode::TryCreate]) {
            ImapStoreError::NoSuchFolder { folder, refusal }
        } else if refusal.is(&[ResponseCode::AlreadyExists]) {
            ImapStoreError::FolderExists { folder, refusal }
        } else {
            ImapStoreError::FolderRefused { folder, refusal }
        }
    }

    /// A refusal that concerns message `key` of `folder` (or, for a
    /// missing folder or a lack of permission, the folder).
    pub(crate) fn message_refused(
        folder: &str,
        key: Option<&MessageKey>,
        refusal: Refusal,
    ) -> ImapStoreError {
        let folder = folder.to_string();
        let refusal = Box::new(refusal);
        if refusal.is(&[ResponseCode::NonExistent, ResponseCode::TryCreate]) {
            ImapStoreError::NoSuchFolder { folder, refusal }
        } else if refusal.is(&[ResponseCode::NoPerm]) {
            ImapStoreError::FolderRefused { folder, refusal }
        } else {
            ImapStoreError::MessageRefused {
                folder,
                key: key.cloned(),
                refusal,
            }
        }
    }

    /// Whether the session is gone (the store must be rebuilt).
    pub(crate) fn ends_session(&self) -> bool {
        self.class() == ErrorClass::Store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::Uid;

    fn no(code: Option<ResponseCode>) -> ferry_imap::Error {
        ferry_imap::Error::No {
            command: "APPEND".into(),
            code,
            text: "refused".into(),
        }
    }

    fn message_class(code: Option<ResponseCode>) -> ErrorClass {
        let key = MessageKey::Uid(Uid::new(3).expect("non-zero"));
        match Refusal::from_imap(no(code)) {
            Ok(r) => ImapStoreError::message_refused("INBOX", Some(&key), r).class(),
            Err(e) => ImapStoreError::Session(e).class(),
        }
    }

    #[test]
    fn refusals_reach_as_far_as_their_code_says() {
        assert_eq!(
            message_class(Some(ResponseCode::OverQuota)),
            ErrorClass::Message
        );
        assert_eq!(
            message_class(Some(ResponseCode::Other("TOOBIG".into(), None))),
            ErrorClass::Message
        );
        assert_eq!(message_class(None), ErrorClass::Message);
        assert_eq!(
            message_class(Some(ResponseCode::TryCreate)),
            ErrorClass::Folder
        );
        assert_eq!(
            message_class(Some(ResponseCode::NoPerm)),
            ErrorClass::Folder
        );
        let missing = ImapStoreError::folder("Gone", no(Some(ResponseCode::NonExistent)));
        assert!(matches!(missing, ImapStoreError::NoSuchFolder { .. }));
        assert_eq!(missing.class(), ErrorClass::Folder);
        let exists = ImapStoreError::folder("Dup", no(Some(ResponseCode::AlreadyExists)));
        assert!(matches!(exists, ImapStoreError::FolderExists { .. }));
    }

    #[test]
    fn lost_connections_and_bye_end_the_store() {
        let bye = ImapStoreError::folder(
            "INBOX",
            ferry_imap::Error::Bye {
                text: "shutting down".into(),
            },
        );
        assert_eq!(bye.class(), ErrorClass::Store);
        let auth = ImapStoreError::Session(ferry_imap::Error::AuthenticationFailed {
            user: "me".into(),
            text: "no".into(),
        });
        assert_eq!(auth.class(), ErrorClass::Store);
        assert!(auth.ends_session());
    }

    #[test]
    fn messages_name_what_failed() {
        let key = MessageKey::Uid(Uid::new(7).expect("non-zero"));
        let refusal = Refusal::from_imap(no(Some(ResponseCode::OverQuota))).expect("NO");
        let err = ImapStoreError::message_refused("Sent", Some(&key), refusal);
        assert_eq!(
            err.to_string(),
            "UID 7 in \"Sent\": the server refused APPEND: refused [OVERQUOTA]"
        );
    }
}
