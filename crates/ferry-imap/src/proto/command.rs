//! Command encoding: arguments, quoting, literals.
//!
//! A [`Command`] is a verb plus a sequence of parts: text and literals. The
//! session decides per literal whether it is synchronising (wait for `+`) or
//! non-synchronising (LITERAL+ / LITERAL-), and streams literal data from a
//! reader so a large APPEND never sits in memory. A command may also end in
//! an *open* literal ([`Command::open_literal`]): only its length is sent
//! with the command, and the caller streams the bytes afterwards, as they
//! arrive from elsewhere. Commands that carry credentials are marked so
//! traces show them redacted.

use std::io::Read;

/// The data of a literal.
pub enum LiteralData {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// Exactly `len` bytes read from `reader`.
    Reader {
        /// The exact length the reader yields.
        len: u64,
        /// The source.
        reader: Box<dyn Read + Send>,
    },
}

impl LiteralData {
    /// The literal's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            LiteralData::Bytes(b) => b.len() as u64,
            LiteralData::Reader { len, .. } => *len,
        }
    }

    /// Whether the literal is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for LiteralData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} byte literal>", self.len())
    }
}

/// One piece of a command.
#[derive(Debug)]
pub enum Part {
    /// Text sent as is.
    Text(Vec<u8>),
    /// A literal.
    Literal(LiteralData),
    /// A literal of this many bytes that the caller streams after the
    /// command was sent; always the last part.
    OpenLiteral(u64),
}

/// A command without its tag.
#[derive(Debug)]
pub struct Command {
    verb: String,
    parts: Vec<Part>,
    sensitive: bool,
}

impl Command {
    /// Starts a command with `verb` (e.g. `"UID FETCH"`).
    pub fn new(verb: &str) -> Command {
        Command {
            verb: verb.to_string(),
            parts: vec![Part::Text(verb.as_bytes().to_vec())],
            sensitive: false,
        }
    }

    /// The verb, for errors and logs.
    pub fn verb(&self) -> &str {
        &self.verb
    }

    /// Marks the command as carrying credentials: traces show only its verb.
    pub fn sensitive(mut self) -> Command {
        self.sensitive = true;
        self
    }

    /// Whether traces must redact the command.
    pub fn is_sensitive(&self) -> bool {
        self.sensitive
    }

    /// Appends a space and raw text (atoms, numbers, sets, lists).
    pub fn raw(mut self, text: &str) -> Command {
        self.push_text(b" ");
        self.push_text(text.as_bytes());
        self
    }

    /// Appends a space and a string as an atom, quoted string or literal,
    /// whichever represents it exactly.
    pub fn string(mut self, value: &[u8]) -> Command {
        self.push_text(b" ");
        match encode_string(value) {
            Encoded::Text(text) => self.push_text(&text),
            Encoded::Literal => self
                .parts
                .push(Part::Literal(LiteralData::Bytes(value.to_vec()))),
        }
        self
    }

    /// Appends a space and a literal.
    pub fn literal(mut self, data: LiteralData) -> Command {
        self.push_text(b" ");
        self.parts.push(Part::Literal(data));
        self
    }

    /// Appends a space and an open literal of `len` bytes: the command is
    /// sent up to the literal's announcement, and the caller then streams
    /// exactly `len` bytes and ends the command
    /// ([`Session::write_literal`](crate::Session::write_literal),
    /// [`Session::end_literal`](crate::Session::end_literal)). Nothing may
    /// follow it.
    pub fn open_literal(mut self, len: u64) -> Command {
        self.push_text(b" ");
        self.parts.push(Part::OpenLiteral(len));
        self
    }

    /// The length of the open literal the command ends with, if any.
    pub fn open_literal_len(&self) -> Option<u64> {
        match self.parts.last() {
            Some(Part::OpenLiteral(len)) => Some(*len),
            _ => None,
        }
    }

    /// Whether an open literal is anywhere but last (which cannot be sent).
    pub fn is_malformed(&self) -> bool {
        let last = self.parts.len().saturating_sub(1);
        self.parts
            .iter()
            .enumerate()
            .any(|(i, p)| matches!(p, Part::OpenLiteral(_)) && i != last)
    }

    fn push_text(&mut self, text: &[u8]) {
        match self.parts.last_mut() {
            Some(Part::Text(existing)) => existing.extend_from_slice(text),
            _ => self.parts.push(Part::Text(text.to_vec())),
        }
    }

    /// The command as a trace shows it: text as is, literals as
    /// `{N}<N bytes>` or `{N+}<N bytes>` as `non_sync` says they are sent
    /// (their content is not shown).
    pub fn preview(&self, non_sync: &dyn Fn(u64) -> bool) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => String::from_utf8_lossy(text).into_owned(),
                Part::Literal(data) => literal_preview(data.len(), non_sync),
                Part::OpenLiteral(len) => literal_preview(*len, non_sync),
            })
            .collect()
    }

    /// The parts, consumed for sending.
    pub fn into_parts(self) -> Vec<Part> {
        self.parts
    }

    /// Whether the command carries a literal.
    pub fn has_literal(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Literal(_) | Part::OpenLiteral(_)))
    }
}

fn literal_preview(len: u64, non_sync: &dyn Fn(u64) -> bool) -> String {
    let plus = if non_sync(len) { "+" } else { "" };
    format!("{{{len}{plus}}}<{len} bytes>")
}

enum Encoded {
    Text(Vec<u8>),
    Literal,
}

fn is_atom_char(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

fn encode_string(value: &[u8]) -> Encoded {
    if !value.is_empty()
        && value.iter().all(|&b| is_atom_char(b))
        && !value.eq_ignore_ascii_case(b"NIL")
    {
        return Encoded::Text(value.to_vec());
    }
    if value.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        let mut quoted = Vec::with_capacity(value.len() + 2);
        quoted.push(b'"');
        for &b in value {
            if b == b'"' || b == b'\\' {
                quoted.push(b'\\');
            }
            quoted.push(b);
        }
        quoted.push(b'"');
        return Encoded::Text(quoted);
    }
    Encoded::Literal
}

/// Formats a UID set from sorted or unsorted UIDs, with ranges (`1:3,7`).
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(command: Command) -> Vec<String> {
        command
            .into_parts()
            .into_iter()
            .map(|p| match p {
                Part::Text(t) => String::from_utf8_lossy(&t).into_owned(),
                Part::Literal(l) => format!("{{{}}}", l.len()),
                Part::OpenLiteral(len) => format!("{{{len}...}}"),
            })
            .collect()
    }

    #[test]
    fn strings_are_atoms_quoted_or_literals() {
        let cmd = Command::new("LOGIN").string(b"user").string(b"pa\"ss word");
        assert_eq!(text_of(cmd), ["LOGIN user \"pa\\\"ss word\""]);
        let cmd = Command::new("LOGIN")
            .string(b"user")
            .string("pässword".as_bytes());
        assert_eq!(text_of(cmd), ["LOGIN user ", "{9}"]);
        let cmd = Command::new("SELECT")
            .string(b"")
            .string(b"NIL")
            .string(b"a*b");
        assert_eq!(text_of(cmd), ["SELECT \"\" \"NIL\" \"a*b\""]);
        let cmd = Command::new("X").string(b"a\r\nb");
        assert_eq!(text_of(cmd), ["X ", "{4}"]);
    }

    #[test]
    fn an_open_literal_ends_the_command() {
        let cmd = Command::new("APPEND").string(b"INBOX").open_literal(12);
        assert_eq!(cmd.open_literal_len(), Some(12));
        assert!(!cmd.is_malformed() && cmd.has_literal());
        assert_eq!(cmd.preview(&|_| true), "APPEND INBOX {12+}<12 bytes>");
        assert_eq!(text_of(cmd), ["APPEND INBOX ", "{12...}"]);
        let cmd = Command::new("APPEND").open_literal(3).raw("x");
        assert!(cmd.is_malformed());
        assert_eq!(cmd.open_literal_len(), None);
    }

    #[test]
    fn uid_sets_compress_ranges() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 9, 10, 3]), "1:3,5,9:10");
        assert_eq!(uid_set(&[7]), "7");
        assert_eq!(uid_set(&[]), "");
    }
}
