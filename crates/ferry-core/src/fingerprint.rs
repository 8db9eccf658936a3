//! The content fingerprint: what a message's bytes hash to.
//!
//! design.md: "One fingerprint everywhere: SHA-256 over the message with
//! line endings normalised to CRLF". This module holds the value; the
//! hashing (which must normalise line endings while streaming) lives with
//! the stores that read messages.

use std::fmt;

/// A content fingerprint: SHA-256 over the message with line endings
/// normalised to CRLF (design.md), the same from IMAP and from a file.
///
/// Stored as 64 lower-case hex digits, so it reads plainly in `sqlite3`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Wraps a SHA-256 digest.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Fingerprint(bytes)
    }

    /// The digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hex digits (either case); `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            *slot = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
        }
        Some(Fingerprint(out))
    }

    /// The digest as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(64);
        for byte in self.0 {
            text.push(char::from(DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(DIGITS[usize::from(byte & 15)]));
        }
        text
    }
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hex_is_strict() {
        assert!(Fingerprint::from_hex("").is_none());
        assert!(Fingerprint::from_hex(&"g".repeat(64)).is_none());
        assert!(Fingerprint::from_hex(&"a".repeat(63)).is_none());
        let upper = "AB".repeat(32);
        let fp = Fingerprint::from_hex(&upper).expect("upper-case hex");
        assert_eq!(fp.to_hex(), "ab".repeat(32));
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in proptest::array::uniform32(any::<u8>())) {
            let fp = Fingerprint::from_bytes(bytes);
            prop_assert_eq!(Fingerprint::from_hex(&fp.to_hex()), Some(fp));
        }
    }
}
