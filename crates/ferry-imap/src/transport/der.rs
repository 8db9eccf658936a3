//! A minimal, bounded DER walk over X.509 certificates.
//!
//! Just enough to report a certificate (its subject, for `ferry doctor` and
//! error messages) and to check its validity period when ferry accepts a
//! certificate found in `ca_file` itself (see [`super::verify`]). Everything
//! here reads server-controlled bytes: every function returns `None` on
//! anything unexpected and never panics.

use ferry_core::date::{civil_from_days, days_from_civil};

/// DER tags used below.
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const EXPLICIT_VERSION: u8 = 0xa0;

/// The longest subject text we report (a hostile certificate may be large).
const MAX_SUBJECT: usize = 512;

/// One TLV: its tag, its contents, and what follows it.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// The contents of a TLV that must carry `tag`, and what follows.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, rest) = read_tlv(input)?;
    (found == tag).then_some((contents, rest))
}

/// The fields of tbsCertificate from issuer on: (issuer, validity, subject).
fn tbs_fields(cert: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (certificate, _) = expect(cert, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let (tag, _, after_version) = read_tlv(tbs)?;
    let rest = if tag == EXPLICIT_VERSION {
        after_version
    } else {
        tbs
    };
    let (_serial, _, rest) = read_tlv(rest)?;
    let (_signature, rest) = expect(rest, SEQUENCE)?;
    let (issuer, rest) = expect(rest, SEQUENCE)?;
    let (validity, rest) = expect(rest, SEQUENCE)?;
    let (subject, _) = expect(rest, SEQUENCE)?;
    Some((issuer, validity, subject))
}

/// The certificate's subject as `CN=..., O=...` in certificate order, or
/// `None` when the DER cannot be walked.
pub(crate) fn subject(cert: &[u8]) -> Option<String> {
    let (_, _, subject) = tbs_fields(cert)?;
    let mut parts = Vec::new();
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (set, rest) = expect(rdns, SET)?;
        rdns = rest;
        let mut attributes = set;
        while !attributes.is_empty() {
            let (attribute, rest) = expect(attributes, SEQUENCE)?;
            attributes = rest;
            parts.push(attribute_text(attribute)?);
        }
    }
    let mut text = parts.join(", ");
    truncate(&mut text, MAX_SUBJECT);
    Some(text)
}

/// One `type=value` of a distinguished name.
fn attribute_text(attribute: &[u8]) -> Option<String> {
    let (oid, rest) = expect(attribute, OID)?;
    let (tag, value, _) = read_tlv(rest)?;
    Some(format!(
        "{}={}",
        attribute_name(oid),
        value_text(tag, value)
    ))
}

/// The short name of a well-known attribute type, else its dotted OID.
fn attribute_name(oid: &[u8]) -> String {
    let known: &[(&[u8], &str)] = &[
        (&[0x55, 0x04, 0x03], "CN"),
        (&[0x55, 0x04, 0x06], "C"),
        (&[0x55, 0x04, 0x07], "L"),
        (&[0x55, 0x04, 0x08], "ST"),
        (&[0x55, 0x04, 0x0a], "O"),
        (&[0x55, 0x04, 0x0b], "OU"),
        (
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
            "emailAddress",
        ),
    ];
    known
        .iter()
        .find(|(bytes, _)| *bytes == oid)
        .map(|(_, name)| (*name).to_string())
        .unwrap_or_else(|| dotted_oid(oid))
}

/// An OID in dotted form (`2.5.4.3`).
fn dotted_oid(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &byte in oid {
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A string attribute's text with control characters replaced (it ends up
/// in logs and terminals); other encodings as `#hex`.
fn value_text(tag: u8, value: &[u8]) -> String {
    const UTF8: u8 = 0x0c;
    const PRINTABLE: u8 = 0x13;
    const T61: u8 = 0x14;
    const IA5: u8 = 0x16;
    match tag {
        UTF8 | PRINTABLE | T61 | IA5 => String::from_utf8_lossy(value)
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect(),
        _ => {
            let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
            format!("#{hex}")
        }
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
}

/// The validity period (notBefore, notAfter) in seconds since the Unix
/// epoch, or `None` when the DER cannot be walked.
pub(crate) fn validity(cert: &[u8]) -> Option<(i64, i64)> {
    let (_, validity, _) = tbs_fields(cert)?;
    let (tag, not_before, rest) = read_tlv(validity)?;
    let not_before = parse_time(tag, not_before)?;
    let (tag, not_after, _) = read_tlv(rest)?;
    Some((not_before, parse_time(tag, not_after)?))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as
/// Unix seconds.
fn parse_time(tag: u8, text: &[u8]) -> Option<i64> {
    let digits = text.strip_suffix(b"Z")?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let (year, rest) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy = number(&digits[..2]);
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (number(&digits[..4]), &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| number(&rest[i * 2..i * 2 + 2]);
    let (month, day) = (field(0), field(1));
    let (hour, minute, second) = (field(2), field(3), field(4));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// The value of a run of ASCII digits (checked by the caller).
fn number(digits: &[u8]) -> i64 {
    digits
        .iter()
        .fold(0, |acc, d| acc * 10 + i64::from(d - b'0'))
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn format_time(seconds: i64) -> String {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let rest = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A DER TLV with a short or long length.
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match contents.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(contents);
        out
    }

    fn name(pairs: &[(&[u8], u8, &str)]) -> Vec<u8> {
        let mut rdns = Vec::new();
        for (oid, tag, value) in pairs {
            let attribute = [tlv(OID, oid), tlv(*tag, value.as_bytes())].concat();
            rdns.extend(tlv(SET, &tlv(SEQUENCE, &attribute)));
        }
        tlv(SEQUENCE, &rdns)
    }

    /// A certificate skeleton: enough structure for the walk above.
    fn certificate(subject: &[u8], not_before: &[u8], not_after: &[u8], version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if version {
            tbs.extend(tlv(EXPLICIT_VERSION, &tlv(0x02, &[2])));
        }
        tbs.extend(tlv(0x02, &[1, 2, 3]));
        tbs.extend(tlv(SEQUENCE, &tlv(OID, &[0x2a, 0x03])));
        tbs.extend(name(&[(&[0x55, 0x04, 0x03], 0x0c, "issuer")]));
        tbs.extend(tlv(SEQUENCE, &[not_before, not_after].concat()));
        tbs.extend_from_slice(subject);
        tbs.extend(tlv(SEQUENCE, &[0u8; 200]));
        let body = [tlv(SEQUENCE, &tbs), tlv(SEQUENCE, &[]), tlv(0x03, &[0])].concat();
        tlv(SEQUENCE, &body)
    }

    #[test]
    fn reads_subject_in_certificate_order() {
        let subject = name(&[
            (&[0x55, 0x04, 0x06], 0x13, "DE"),
            (&[0x55, 0x04, 0x0a], 0x0c, "Ferry Test"),
            (&[0x55, 0x04, 0x03], 0x0c, "mail.example.org"),
            (&[0x55, 0x1d, 0x11], 0x0c, "x"),
        ]);
        let utc = tlv(UTC_TIME, b"250101000000Z");
        let cert = certificate(&subject, &utc, &utc, true);
        assert_eq!(
            subject_of(&cert),
            "C=DE, O=Ferry Test, CN=mail.example.org, 2.5.29.17=x"
        );
        let cert = certificate(&subject, &utc, &utc, false);
        assert!(subject_of(&cert).ends_with("CN=mail.example.org, 2.5.29.17=x"));
    }

    fn subject_of(cert: &[u8]) -> String {
        subject(cert).expect("walkable")
    }

    #[test]
    fn control_characters_are_masked_and_long_subjects_cut() {
        let long = "a".repeat(2000);
        let subject = name(&[
            (&[0x55, 0x04, 0x03], 0x0c, "evil\x1b[31m\n"),
            (&[0x55, 0x04, 0x0b], 0x0c, &long),
        ]);
        let utc = tlv(UTC_TIME, b"250101000000Z");
        let text = subject_of(&certificate(&subject, &utc, &utc, true));
        assert!(text.starts_with("CN=evil?[31m?, OU=aaa"));
        assert!(text.len() <= MAX_SUBJECT + 3);
    }

    #[test]
    fn reads_validity_in_both_time_formats() {
        let subject = name(&[(&[0x55, 0x04, 0x03], 0x0c, "x")]);
        let not_before = tlv(UTC_TIME, b"700101000000Z");
        let not_after = tlv(GENERALIZED_TIME, b"20380119031407Z");
        let cert = certificate(&subject, &not_before, &not_after, true);
        assert_eq!(validity(&cert), Some((0, i64::from(i32::MAX))));
        let before_2000 = tlv(UTC_TIME, b"991231235959Z");
        let cert = certificate(&subject, &before_2000, &not_after, true);
        assert_eq!(validity(&cert).map(|v| v.0), Some(946_684_799));
    }

    #[test]
    fn rejects_bad_times() {
        assert_eq!(parse_time(UTC_TIME, b"2501010000Z"), None);
        assert_eq!(parse_time(UTC_TIME, b"251301000000Z"), None);
        assert_eq!(parse_time(UTC_TIME, b"25010100000xZ"), None);
        assert_eq!(parse_time(GENERALIZED_TIME, b"250101000000Z"), None);
        assert_eq!(parse_time(0x04, b"250101000000Z"), None);
    }

    #[test]
    fn formats_times() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_time(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }

    #[test]
    fn names_unknown_oids_dotted() {
        assert_eq!(
            dotted_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            "1.2.840.113549"
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = subject(&bytes);
            let _ = validity(&bytes);
        }

        #[test]
        fn days_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
