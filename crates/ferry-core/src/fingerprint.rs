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
        // Without a branch per digit: a run loads every pair's
        // fingerprint, and random digits defeat branch prediction.
        let mut out = [0u8; 32];
        let mut invalid = 0u8;
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let (high, low) = (
                HEX_VALUES[usize::from(pair[0])],
                HEX_VALUES[usize::from(pair[1])],
            );
            invalid |= (high | low) & INVALID;
            *slot = high << 4 | low;
        }
        (invalid == 0).then_some(Fingerprint(out))
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

/// Marks a byte that is no hex digit in [`HEX_VALUES`].
const INVALID: u8 = 0x80;

/// Each byte's value as a hex digit (either case), else [`INVALID`].
const HEX_VALUES: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

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

    #[test]
    fn any_other_character_anywhere_is_refused() {
        for position in 0..64 {
            for byte in (0u8..128).filter(|b| !b.is_ascii_hexdigit()) {
                let mut text = vec![b'0'; 64];
                text[position] = byte;
                let text = String::from_utf8(text).expect("ASCII");
                assert!(Fingerprint::from_hex(&text).is_none(), "{text:?}");
            }
        }
        // A multi-byte character makes the length wrong, or takes the place
        // of two digits.
        let text = format!("{}é", "0".repeat(62));
        assert!(Fingerprint::from_hex(&text).is_none());
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in proptest::array::uniform32(any::<u8>())) {
            let fp = Fingerprint::from_bytes(bytes);
            prop_assert_eq!(Fingerprint::from_hex(&fp.to_hex()), Some(fp));
        }
    }
}
