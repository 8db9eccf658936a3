//! What a store knows of one message, in the terms both stores share.

use crate::{Fingerprint, Flags, Uid};

/// A message's identity inside one folder of one store: a UID on an IMAP
/// server, the unique part of the file name in a Maildir.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKey {
    /// An IMAP UID (valid within one UIDVALIDITY).
    Uid(Uid),
    /// A Maildir unique name (stable across flag renames).
    Name(String),
}

impl std::fmt::Display for MessageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageKey::Uid(uid) => write!(f, "UID {uid}"),
            MessageKey::Name(name) => f.write_str(name),
        }
    }
}

/// A message as a snapshot lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// Its identity in its folder.
    pub key: MessageKey,
    /// Its flags now.
    pub flags: Flags,
    /// Its size with CRLF line endings, when known.
    pub size: Option<u64>,
    /// Its Message-ID header, when known.
    pub message_id: Option<String>,
    /// Its content fingerprint, when known.
    pub fingerprint: Option<Fingerprint>,
}

impl MessageMeta {
    /// A message known only by key and flags.
    pub fn new(key: MessageKey, flags: Flags) -> MessageMeta {
        MessageMeta {
            key,
            flags,
            size: None,
            message_id: None,
            fingerprint: None,
        }
    }

    /// Whether `self` and `other` are provably the same content: equal
    /// fingerprints, else equal Message-ID and size. Unknown is not equal.
    pub fn same_content(&self, other: &MessageMeta) -> bool {
        match (&self.fingerprint, &other.fingerprint) {
            (Some(a), Some(b)) => a == b,
            _ => match (&self.message_id, &other.message_id, self.size, other.size) {
                (Some(a), Some(b), Some(x), Some(y)) => a == b && x == y,
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: Option<&str>, size: Option<u64>, fp: Option<&str>) -> MessageMeta {
        MessageMeta {
            key: MessageKey::Name("k".into()),
            flags: Flags::new(),
            size,
            message_id: id.map(str::to_string),
            fingerprint: fp.map(|f| Fingerprint::from_bytes([f.as_bytes()[0]; 32])),
        }
    }

    #[test]
    fn same_content_needs_proof() {
        assert!(meta(None, None, Some("ab")).same_content(&meta(None, None, Some("ab"))));
        assert!(!meta(Some("<x>"), Some(5), Some("ab")).same_content(&meta(
            Some("<x>"),
            Some(5),
            Some("cd")
        )));
        assert!(meta(Some("<x>"), Some(5), None).same_content(&meta(
            Some("<x>"),
            Some(5),
            Some("cd")
        )));
        assert!(!meta(Some("<x>"), Some(5), None).same_content(&meta(Some("<x>"), Some(6), None)));
        assert!(!meta(Some("<x>"), None, None).same_content(&meta(Some("<x>"), None, None)));
        assert!(!meta(None, None, None).same_content(&meta(None, None, None)));
    }
}
