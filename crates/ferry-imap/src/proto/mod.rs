//! The sans-I/O protocol core: bytes in, responses out; commands in, bytes
//! out. No sockets, no clocks: it is driven by the session and tested with
//! recorded transcripts.

pub mod command;
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
mod objectid;
pub mod response;
pub mod sexp;

use crate::error::Result;
use framing::Frame;
use response::{Completion, Response, ResponseCode, Status};

/// Parses a frame with imap-proto, falling back to the forms it does not
/// know for untagged data; tagged completions must parse.
pub fn parse_response(frame: &Frame) -> Result<Response> {
    let bytes = &frame.bytes;
    // imap-proto returns `* ENABLED x` as if it were `* CAPABILITY x`.
    if bytes.len() > 10 && bytes[..10].eq_ignore_ascii_case(b"* ENABLED ") {
        return Ok(Response::Untagged(response::parse_fallback(&bytes[2..])));
    }
    // One EMAILID is taken out of a FETCH; a second one is left to fail
    // the parse like any other item imap-proto does not know.
    if let Some((rest, email_id)) = is_fetch(bytes)
        .then(|| objectid::take_email_id(bytes))
        .flatten()
    {
        let mut parsed = parse_known(&rest)?;
        if let Response::Untagged(response::Untagged::Fetch(fetch)) = &mut parsed {
            fetch.email_id = Some(email_id);
        }
        return Ok(parsed);
    }
    parse_known(bytes)
}

/// Whether a response is `* <number> FETCH ...`.
fn is_fetch(bytes: &[u8]) -> bool {
    let Some(rest) = bytes.strip_prefix(b"* ") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0
        && rest
            .get(digits..digits + 7)
            .is_some_and(|w| w.eq_ignore_ascii_case(b" FETCH "))
}

/// Parses a response with imap-proto, or the fallbacks below.
fn parse_known(bytes: &[u8]) -> Result<Response> {
    match imap_proto::Response::from_bytes(bytes) {
        Ok((&[], parsed)) => {
            response::convert(parsed).map_err(|what| framing::protocol(&what, bytes))
        }
        _ if bytes.starts_with(b"* ") => {
            Ok(Response::Untagged(response::parse_fallback(&bytes[2..])))
        }
        _ if bytes.starts_with(b"+") => Ok(Response::Continue {
            text: String::from_utf8_lossy(&bytes[1..]).trim().to_string(),
        }),
        _ => parse_tagged_fallback(bytes)
            .ok_or_else(|| framing::protocol("a response ferry cannot parse", bytes)),
    }
}

/// `tag SP (OK|NO|BAD) SP text`, for completions imap-proto refuses (odd
/// text after a code, a missing space).
fn parse_tagged_fallback(bytes: &[u8]) -> Option<Response> {
    let line = std::str::from_utf8(bytes)
        .ok()?
        .trim_end_matches(['\r', '\n']);
    let (tag, rest) = line.split_once(' ')?;
    if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (word, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let status = match word.to_ascii_uppercase().as_str() {
        "OK" => Status::Ok,
        "NO" => Status::No,
        "BAD" => Status::Bad,
        _ => return None,
    };
    let (code, text) = match text.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((code, text)) => (
            Some(ResponseCode::parse(code)),
            text.trim_start().to_string(),
        ),
        None => (None, text.to_string()),
    };
    Some(Response::Tagged {
        tag: tag.to_string(),
        completion: Completion { status, code, text },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::proto::framing::Frame;
    use crate::proto::response::{ResponseCode, Status, Untagged};

    fn frame(text: &[u8]) -> Frame {
        Frame {
            bytes: text.to_vec(),
            diverted: 0,
        }
    }

    #[test]
    fn unknown_codes_are_parsed_from_the_text() {
        let parsed = parse_response(&frame(b"f3 NO [MODIFIED 7,9] Conditional STORE failed\r\n"))
            .expect("parses");
        assert_eq!(
            parsed,
            Response::Tagged {
                tag: "f3".into(),
                completion: Completion {
                    status: Status::No,
                    code: Some(ResponseCode::Modified(vec![7, 9])),
                    text: "Conditional STORE failed".into()
                }
            }
        );
        let parsed =
            parse_response(&frame(b"f4 NO [OVERQUOTA] Quota exceeded\r\n")).expect("parses");
        assert!(matches!(
            parsed,
            Response::Tagged {
                completion: Completion {
                    code: Some(ResponseCode::OverQuota),
                    ..
                },
                ..
            }
        ));
    }

    #[test]
    fn enabled_is_not_capability() {
        let parsed = parse_response(&frame(b"* ENABLED QRESYNC\r\n")).expect("parses");
        assert_eq!(
            parsed,
            Response::Untagged(Untagged::Enabled(vec!["QRESYNC".into()]))
        );
    }

    #[test]
    fn zero_uids_are_protocol_errors() {
        assert!(matches!(
            parse_response(&frame(b"* 1 FETCH (UID 0 FLAGS ())\r\n")),
            Err(Error::Protocol { .. })
        ));
        assert!(matches!(
            parse_response(&frame(b"* OK [UIDVALIDITY 0] x\r\n")),
            Err(Error::Protocol { .. })
        ));
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        assert!(matches!(
            parse_response(&frame(b"\x00\x01garbage\r\n")),
            Err(Error::Protocol { .. })
        ));
        assert!(matches!(
            parse_response(&frame(b"f1 MAYBE ok\r\n")),
            Err(Error::Protocol { .. })
        ));
    }

    #[test]
    fn emailid_reaches_the_fetch() {
        let parsed = parse_response(&frame(
            b"* 3 FETCH (UID 9 EMAILID (M6d99) RFC822.SIZE 120 FLAGS (\\Seen))\r\n",
        ))
        .expect("parses");
        let Response::Untagged(crate::proto::response::Untagged::Fetch(fetch)) = parsed else {
            panic!("not a FETCH: {parsed:?}");
        };
        assert_eq!(fetch.email_id.as_deref(), Some("M6d99"));
        assert_eq!((fetch.uid, fetch.size), (Some(9), Some(120)));
        assert_eq!(fetch.flags, Some(vec!["\\Seen".to_string()]));
    }

    #[test]
    fn many_emailids_are_an_error_not_a_recursion() {
        let mut line = b"* 1 FETCH (UID 1".to_vec();
        for _ in 0..50_000 {
            line.extend_from_slice(b" EMAILID (M1)");
        }
        line.extend_from_slice(b")\r\n");
        // Not a FETCH ferry understands (and no deep recursion on the way).
        let parsed = parse_response(&frame(&line));
        assert!(
            !matches!(
                parsed,
                Ok(Response::Untagged(crate::proto::response::Untagged::Fetch(
                    _
                )))
            ),
            "{parsed:?}"
        );
        assert!(!is_fetch(b"* OK EMAILID (M1)\r\n") && is_fetch(b"* 12 FETCH (UID 3)\r\n"));
    }
}
