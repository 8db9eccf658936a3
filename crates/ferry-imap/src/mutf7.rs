//! Modified UTF-7 (RFC 3501 5.1.3), the wire encoding of IMAP mailbox names.
//!
//! Printable ASCII other than `&` stands for itself, `&` is `&-`, and every
//! other run of characters is UTF-16BE in base64 with `,` for `/`, between
//! `&` and `-`. Decoding is strict: a name a correct server could not have
//! produced is an error rather than a guess, so two different wire names can
//! never decode to the same local name.

use base64::Engine;
use base64::alphabet::Alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// A mailbox name that is not valid modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mailbox name {name:?} is not valid modified UTF-7: {reason}")]
pub struct Mutf7Error {
    /// The name as received.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn engine() -> GeneralPurpose {
    // The IMAP variant of the base64 alphabet: ',' instead of '/'.
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,");
    let config = GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone);
    match alphabet {
        Ok(alphabet) => GeneralPurpose::new(&alphabet, config),
        // The alphabet above is a constant of 64 distinct printable bytes.
        Err(_) => unreachable!("constant base64 alphabet is valid"),
    }
}

fn is_direct(c: char) -> bool {
    ('\u{20}'..='\u{7e}').contains(&c)
}

/// Encodes a Unicode mailbox name for the wire.
pub fn encode(name: &str) -> String {
    let engine = engine();
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&engine.encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if is_direct(c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes a wire mailbox name, refusing anything a correct encoder would
/// not produce (raw 8-bit or control bytes, unterminated or empty shifts,
/// encoded printable ASCII, bad base64, unpaired surrogates).
pub fn decode(wire: &str) -> Result<String, Mutf7Error> {
    let fail = |reason| Mutf7Error {
        name: wire.to_string(),
        reason,
    };
    let engine = engine();
    let mut out = String::with_capacity(wire.len());
    let mut rest = wire;
    while let Some(c) = rest.chars().next() {
        if !is_direct(c) {
            return Err(fail("contains a byte outside printable ASCII"));
        }
        if c != '&' {
            out.push(c);
            rest = &rest[1..];
            continue;
        }
        let end = rest
            .find('-')
            .ok_or_else(|| fail("a '&' shift is not closed by '-'"))?;
        let encoded = &rest[1..end];
        rest = &rest[end + 1..];
        if encoded.is_empty() {
            out.push('&');
            continue;
        }
        let bytes = engine
            .decode(encoded)
            .map_err(|_| fail("a shifted run is not valid base64"))?;
        if bytes.len() % 2 != 0 {
            return Err(fail("a shifted run is not whole UTF-16 units"));
        }
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .collect();
        let text = String::from_utf16(&units).map_err(|_| fail("unpaired UTF-16 surrogate"))?;
        if text.chars().any(is_direct) {
            return Err(fail("printable ASCII is encoded in a shifted run"));
        }
        if rest.starts_with('&') && !rest.starts_with("&-") {
            return Err(fail("two shifted runs are adjacent"));
        }
        out.push_str(&text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_3501_examples() {
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(),
            Ok("~peter/mail/台北/日本語")
        );
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(decode("Tom &- Jerry").as_deref(), Ok("Tom & Jerry"));
    }

    #[test]
    fn astral_characters_use_surrogate_pairs() {
        let name = "Mail 📬";
        let wire = encode(name);
        assert_eq!(wire, "Mail &2D3c7A-");
        assert_eq!(decode(&wire).as_deref(), Ok(name));
    }

    #[test]
    fn malformed_names_are_refused() {
        for bad in [
            "&U,BTFw",   // unterminated
            "&U,BTF-",   // not whole units
            "&AGEAYg-",  // "ab" encoded
            "&2D0-",     // lone surrogate
            "caf\u{e9}", // raw 8-bit
            "a\u{1}b",   // control character
            "&U,B&-",    // bad base64
            "&U,BTFw-&ZeVnLIqe-",
        ] {
            assert!(decode(bad).is_err(), "{bad:?} should be refused");
        }
    }

    proptest! {
        #[test]
        fn round_trip(name in "\\PC{0,24}") {
            let wire = encode(&name);
            prop_assert!(wire.chars().all(is_direct));
            prop_assert_eq!(decode(&wire).expect("own encoding decodes"), name);
        }

        #[test]
        fn decode_then_encode_is_identity(wire in "[ -~]{0,24}") {
            if let Ok(name) = decode(&wire) {
                prop_assert_eq!(encode(&name), wire);
            }
        }
    }
}
