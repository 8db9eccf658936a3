//! RFC 8474 (OBJECTID) FETCH items, which imap-proto does not parse:
//! `EMAILID (M6d99ac3275bb4e)` is taken out of a FETCH response before the
//! rest is parsed. The scan skips quoted strings and literals, so a header
//! or body that happens to contain the word cannot be mistaken for it.

/// The response without its EMAILID item, and the item's value; `None`
/// when the response carries none.
pub(crate) fn take_email_id(bytes: &[u8]) -> Option<(Vec<u8>, String)> {
    let at = find_item(bytes, b"EMAILID")?;
    let open = at + b"EMAILID".len();
    let rest = bytes.get(open..)?;
    let value_start = open + rest.iter().position(|&b| b != b' ')?;
    if bytes.get(value_start) != Some(&b'(') {
        return None;
    }
    let close = value_start + bytes[value_start..].iter().position(|&b| b == b')')?;
    let value = std::str::from_utf8(&bytes[value_start + 1..close]).ok()?;
    if value.is_empty()
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    // Remove the item and one space that separated it from a neighbour.
    let (mut start, mut end) = (at, close + 1);
    if bytes.get(end) == Some(&b' ') {
        end += 1;
    } else if start > 0 && bytes[start - 1] == b' ' {
        start -= 1;
    }
    let mut out = Vec::with_capacity(bytes.len() - (end - start));
    out.extend_from_slice(&bytes[..start]);
    out.extend_from_slice(&bytes[end..]);
    Some((out, value.to_string()))
}

/// Where the atom `name` starts as a FETCH item (after `(` or a space,
/// followed by a space), outside quoted strings and literals.
fn find_item(bytes: &[u8], name: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = skip_quoted(bytes, i + 1),
            b'{' => i = skip_literal(bytes, i),
            _ if matches!(i.checked_sub(1).map(|p| bytes[p]), Some(b'(' | b' '))
                && bytes[i..].len() > name.len()
                && bytes[i..i + name.len()].eq_ignore_ascii_case(name)
                && bytes[i + name.len()] == b' ' =>
            {
                return Some(i);
            }
            _ => i += 1,
        }
    }
    None
}

/// The index after the closing quote of a quoted string starting at `i`.
fn skip_quoted(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// The index after a literal `{n}\r\n` + n bytes starting at `i` (or after
/// the brace when it is not one).
fn skip_literal(bytes: &[u8], i: usize) -> usize {
    let digits_end = bytes[i + 1..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(bytes.len(), |p| i + 1 + p);
    let Some(len) = std::str::from_utf8(&bytes[i + 1..digits_end])
        .ok()
        .and_then(|d| d.parse::<usize>().ok())
    else {
        return i + 1;
    };
    let mut after = digits_end;
    if bytes.get(after) == Some(&b'+') {
        after += 1;
    }
    if bytes.get(after..after + 3) != Some(b"}\r\n") {
        return i + 1;
    }
    (after + 3).saturating_add(len).min(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_item_is_taken_out_wherever_it_stands() {
        let (rest, id) = take_email_id(b"* 1 FETCH (UID 7 EMAILID (M6d99ac) FLAGS (\\Seen))\r\n")
            .expect("found");
        assert_eq!(id, "M6d99ac");
        assert_eq!(rest, b"* 1 FETCH (UID 7 FLAGS (\\Seen))\r\n");
        let (rest, id) = take_email_id(b"* 1 FETCH (EMAILID (Mabc) UID 7)\r\n").expect("found");
        assert_eq!(
            (rest.as_slice(), id.as_str()),
            (&b"* 1 FETCH (UID 7)\r\n"[..], "Mabc")
        );
        let (rest, _) = take_email_id(b"* 1 FETCH (UID 7 EMAILID (Mabc))\r\n").expect("found");
        assert_eq!(rest, b"* 1 FETCH (UID 7)\r\n");
    }

    #[test]
    fn quoted_strings_and_literals_are_not_searched() {
        let literal = b"* 1 FETCH (UID 7 BODY[HEADER.FIELDS (SUBJECT)] {28}\r\nSubject: x EMAILID (Mfake)\r\n)\r\n";
        assert_eq!(take_email_id(literal), None);
        let quoted = b"* 1 FETCH (UID 7 X \" EMAILID (Mfake)\")\r\n";
        assert_eq!(take_email_id(quoted), None);
        let after = b"* 1 FETCH (BODY[] {10}\r\nEMAILID (M \r\n EMAILID (Mreal))\r\n";
        assert_eq!(
            take_email_id(after).map(|(_, id)| id),
            Some("Mreal".to_string())
        );
    }

    #[test]
    fn malformed_values_are_left_alone() {
        assert_eq!(take_email_id(b"* 1 FETCH (EMAILID Mabc)\r\n"), None);
        assert_eq!(take_email_id(b"* 1 FETCH (EMAILID (M a))\r\n"), None);
        assert_eq!(take_email_id(b"* 1 FETCH (EMAILID ())\r\n"), None);
    }
}
