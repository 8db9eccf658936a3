//! Entry points for the fuzzers in `fuzz/` and for the tests that replay
//! their corpus: each takes arbitrary bytes and must never panic, hang or
//! grow past the reader's limits.

use super::framing::{Framer, KeepInMemory, Limits};
use super::parse_response;

/// The limits the fuzzers run the reader with (small, so they are hit).
const LIMITS: Limits = Limits {
    max_line: 4096,
    max_literal: 1 << 30,
    max_inline_literal: 8192,
    max_frame: 16384,
    max_depth: 16,
    divert_threshold: 16 << 10,
};

/// Feeds `data` to a response reader in chunks (each chunk's first byte
/// says how long it is), parsing every frame it yields, until the data
/// ends or the reader refuses it.
pub fn responses(data: &[u8]) {
    let mut framer = Framer::new(LIMITS);
    let mut rest = data;
    while let Some(&first) = rest.first() {
        let len = (usize::from(first) % 64 + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(len);
        rest = tail;
        framer.feed(chunk);
        loop {
            match framer.next_frame(&mut KeepInMemory) {
                Ok(Some(frame)) => {
                    assert!(frame.bytes.len() <= LIMITS.max_frame + 8, "frame too big");
                    let _ = parse_response(&frame);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(
            framer.buffered() <= LIMITS.max_frame + 64 + LIMITS.max_line,
            "the reader grew past its limits"
        );
    }
}

/// Decodes `data` as a modified UTF-7 mailbox name (RFC 3501 5.1.3); a
/// name that decodes encodes back to a name that decodes the same.
pub fn mailbox_name(data: &[u8]) {
    let Ok(wire) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(decoded) = crate::mutf7::decode(wire) {
        let again = crate::mutf7::encode(&decoded);
        assert_eq!(crate::mutf7::decode(&again).ok(), Some(decoded));
    }
}
