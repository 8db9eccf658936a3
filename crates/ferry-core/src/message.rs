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

/// The Message-ID in a message's header (the bytes up to the blank line;
/// CRLF or LF), unfolded and trimmed; `None` when there is none.
pub fn header_message_id(header: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(header).replace("\r\n", "\n");
    let end = text.find("\n\n").unwrap_or(text.len());
    let mut lines = text[..end].split('\n').peekable();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("Message-ID") {
            continue;
        }
        let mut value = value.trim().to_string();
        while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
            value.push_str(next.trim());
            lines.next();
        }
        return (!value.is_empty()).then_some(value);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_from_a_header() {
        assert_eq!(
            header_message_id(b"Subject: x\r\nMessage-Id:\r\n <a@b>\r\n\r\nMessage-ID: <no>\r\n")
                .as_deref(),
            Some("<a@b>")
        );
        assert_eq!(
            header_message_id(b"message-id: <lf@x>\nSubject: y\n\n").as_deref(),
            Some("<lf@x>")
        );
        assert_eq!(
            header_message_id(b"Subject: x\r\n\r\nMessage-ID: <body@only>\r\n"),
            None
        );
        assert_eq!(header_message_id(b""), None);
    }

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
