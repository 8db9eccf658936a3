//! Response framing: finds where one response ends, with hard limits.
//!
//! imap-proto parses only a response that is entirely in memory, literals
//! included. The [`Framer`] reads the stream once: it collects lines, reads
//! each `{N}` literal itself, and diverts large literals (message bodies) to
//! a [`LiteralSink`] as they arrive instead of keeping them, so a 50 MiB
//! message costs a few KiB of memory. A diverted literal is left in the frame
//! as `{0}` for the parser. Every line, literal, frame and nesting depth is
//! bounded, so a hostile server cannot make the client allocate without
//! limit.

use crate::error::Error;
use std::io;

/// The bounds a server's responses must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest line between literals.
    pub max_line: usize,
    /// The largest literal a server may announce (diverted or not).
    pub max_literal: u64,
    /// The largest literal kept in memory.
    pub max_inline_literal: u64,
    /// The largest response kept in memory (lines plus inline literals).
    pub max_frame: usize,
    /// The deepest parenthesis nesting.
    pub max_depth: usize,
    /// Literals at least this large are offered to the sink.
    pub divert_threshold: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 8 << 20,
            max_literal: 1 << 30,
            max_inline_literal: 8 << 20,
            max_frame: 32 << 20,
            max_depth: 16,
            divert_threshold: 16 << 10,
        }
    }
}

/// Where large literals go.
pub trait LiteralSink {
    /// A literal of `len` bytes starts; `prefix` is the response so far
    /// (e.g. `* 5 FETCH (UID 9 BODY[] `). Return `true` to receive it.
    fn divert(&mut self, prefix: &[u8], len: u64) -> bool;
    /// The next bytes of the diverted literal.
    fn write(&mut self, data: &[u8]) -> io::Result<()>;
    /// The diverted literal is complete.
    fn finish(&mut self) -> io::Result<()>;
}

/// A sink that takes nothing: every literal stays in memory, within limits.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeepInMemory;

impl LiteralSink for KeepInMemory {
    fn divert(&mut self, _prefix: &[u8], _len: u64) -> bool {
        false
    }
    fn write(&mut self, _data: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The response, small literals inline, diverted ones as `{0}`.
    pub bytes: Vec<u8>,
    /// How many literals went to the sink, in order.
    pub diverted: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a line; `line_start` is where it began in the frame.
    Line { line_start: usize },
    /// Reading a literal's bytes.
    Literal { remaining: u64, diverted: bool },
}

/// The incremental response reader.
#[derive(Debug)]
pub struct Framer {
    limits: Limits,
    input: Vec<u8>,
    consumed: usize,
    frame: Vec<u8>,
    diverted: usize,
    state: State,
    depth: usize,
    in_quote: bool,
    escaped: bool,
}

impl Framer {
    /// A reader with these limits.
    pub fn new(limits: Limits) -> Framer {
        Framer {
            limits,
            input: Vec::new(),
            consumed: 0,
            frame: Vec::new(),
            diverted: 0,
            state: State::Line { line_start: 0 },
            depth: 0,
            in_quote: false,
            escaped: false,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Adds bytes received from the server.
    pub fn feed(&mut self, data: &[u8]) {
        if self.consumed > 0 && self.consumed == self.input.len() {
            self.input.clear();
            self.consumed = 0;
        } else if self.consumed > (64 << 10) && self.consumed * 2 > self.input.len() {
            self.input.drain(..self.consumed);
            self.consumed = 0;
        }
        self.input.extend_from_slice(data);
    }

    /// Bytes received but not yet part of a returned frame.
    pub fn buffered(&self) -> usize {
        self.input.len() - self.consumed + self.frame.len()
    }

    /// The next complete response, or `None` when more bytes are needed.
    pub fn next_frame(&mut self, sink: &mut dyn LiteralSink) -> Result<Option<Frame>, Error> {
        loop {
            let available = self.input.len() - self.consumed;
            match self.state {
                State::Literal {
                    remaining,
                    diverted,
                } => {
                    if available == 0 {
                        return Ok(None);
                    }
                    self.take_literal(remaining, diverted, sink)?;
                }
                State::Line { line_start } => {
                    let rest = &self.input[self.consumed..];
                    match rest.iter().position(|&b| b == b'\n') {
                        None => {
                            self.append_line_bytes(available, line_start)?;
                            return Ok(None);
                        }
                        Some(at) => {
                            self.append_line_bytes(at + 1, line_start)?;
                            if let Some(frame) = self.end_of_line(line_start, sink)? {
                                return Ok(Some(frame));
                            }
                        }
                    }
                }
            }
        }
    }

    fn take_literal(
        &mut self,
        remaining: u64,
        diverted: bool,
        sink: &mut dyn LiteralSink,
    ) -> Result<(), Error> {
        let available = self.input.len() - self.consumed;
        let n = usize::try_from(remaining).map_or(available, |r| r.min(available));
        let chunk = &self.input[self.consumed..self.consumed + n];
        if diverted {
            sink.write(chunk).map_err(sink_error)?;
        } else {
            self.frame.extend_from_slice(chunk);
        }
        self.consumed += n;
        let remaining = remaining - n as u64;
        if remaining == 0 {
            if diverted {
                sink.finish().map_err(sink_error)?;
            }
            self.state = State::Line {
                line_start: self.frame.len(),
            };
        } else {
            self.state = State::Literal {
                remaining,
                diverted,
            };
        }
        Ok(())
    }

    fn append_line_bytes(&mut self, n: usize, line_start: usize) -> Result<(), Error> {
        let line_len = self.frame.len() - line_start + n;
        if line_len > self.limits.max_line {
            return Err(limit(
                "response line length",
                line_len as u64,
                self.limits.max_line as u64,
            ));
        }
        if self.frame.len() + n > self.limits.max_frame {
            return Err(limit(
                "response size",
                (self.frame.len() + n) as u64,
                self.limits.max_frame as u64,
            ));
        }
        self.track_depth(n)?;
        self.frame
            .extend_from_slice(&self.input[self.consumed..self.consumed + n]);
        self.consumed += n;
        Ok(())
    }

    fn track_depth(&mut self, n: usize) -> Result<(), Error> {
        for &byte in &self.input[self.consumed..self.consumed + n] {
            if self.in_quote {
                match (self.escaped, byte) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_quote = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => self.in_quote = true,
                b'(' | b'[' => {
                    self.depth += 1;
                    if self.depth > self.limits.max_depth {
                        return Err(limit(
                            "nesting depth",
                            self.depth as u64,
                            self.limits.max_depth as u64,
                        ));
                    }
                }
                b')' | b']' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
        Ok(())
    }

    /// A line ended: either a literal follows, or the response is complete.
    fn end_of_line(
        &mut self,
        line_start: usize,
        sink: &mut dyn LiteralSink,
    ) -> Result<Option<Frame>, Error> {
        self.in_quote = false;
        self.escaped = false;
        let line = &self.frame[line_start..];
        if !line.ends_with(b"\r\n") {
            return Err(protocol("a line ends in a bare LF", line));
        }
        match literal_announcement(line)? {
            None => Ok(Some(self.complete())),
            Some((len, digits_start)) => {
                self.start_literal(len, line_start + digits_start, sink)?;
                Ok(None)
            }
        }
    }

    fn start_literal(
        &mut self,
        len: u64,
        brace_at: usize,
        sink: &mut dyn LiteralSink,
    ) -> Result<(), Error> {
        if len > self.limits.max_literal {
            return Err(limit("literal size", len, self.limits.max_literal));
        }
        let divert =
            len >= self.limits.divert_threshold && sink.divert(&self.frame[..brace_at], len);
        if divert {
            self.frame.truncate(brace_at);
            self.frame.extend_from_slice(b"{0}\r\n");
            self.diverted += 1;
        } else if len > self.limits.max_inline_literal
            || self.frame.len() as u64 + len > self.limits.max_frame as u64
        {
            return Err(limit(
                "literal kept in memory",
                len,
                self.limits.max_inline_literal,
            ));
        }
        self.state = if len == 0 {
            if divert {
                sink.finish().map_err(sink_error)?;
            }
            State::Line {
                line_start: self.frame.len(),
            }
        } else {
            State::Literal {
                remaining: len,
                diverted: divert,
            }
        };
        Ok(())
    }

    fn complete(&mut self) -> Frame {
        let frame = Frame {
            bytes: std::mem::take(&mut self.frame),
            diverted: std::mem::take(&mut self.diverted),
        };
        self.state = State::Line { line_start: 0 };
        self.depth = 0;
        frame
    }
}

/// If `line` (ending in CRLF) ends with `{N}` or `{N+}`, returns N and the
/// offset of `{`.
fn literal_announcement(line: &[u8]) -> Result<Option<(u64, usize)>, Error> {
    let body = &line[..line.len() - 2];
    if body.last() != Some(&b'}') {
        return Ok(None);
    }
    let Some(open) = body.iter().rposition(|&b| b == b'{') else {
        return Ok(None);
    };
    let inner = &body[open + 1..body.len() - 1];
    let digits = inner.strip_suffix(b"+").unwrap_or(inner);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Ok(None);
    }
    let len = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .ok_or_else(|| limit("literal size", u64::MAX, u64::MAX))?;
    Ok(Some((len, open)))
}

fn limit(what: &'static str, value: u64, limit: u64) -> Error {
    Error::LimitExceeded { what, value, limit }
}

/// A protocol error with a bounded, printable excerpt of what was received.
pub(crate) fn protocol(what: &str, received: &[u8]) -> Error {
    Error::Protocol {
        what: what.to_string(),
        received: excerpt(received),
    }
}

/// At most 200 bytes of `data`, lossily decoded.
pub(crate) fn excerpt(data: &[u8]) -> String {
    let cut = &data[..data.len().min(200)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if data.len() > cut.len() {
        text.push_str("...");
    }
    text
}

fn sink_error(source: io::Error) -> Error {
    Error::Io {
        context: "writing a message body received from the server".into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        bodies: Vec<Vec<u8>>,
        current: Vec<u8>,
        prefixes: Vec<String>,
    }

    impl LiteralSink for Collect {
        fn divert(&mut self, prefix: &[u8], _len: u64) -> bool {
            self.prefixes
                .push(String::from_utf8_lossy(prefix).into_owned());
            true
        }
        fn write(&mut self, data: &[u8]) -> io::Result<()> {
            self.current.extend_from_slice(data);
            Ok(())
        }
        fn finish(&mut self) -> io::Result<()> {
            self.bodies.push(std::mem::take(&mut self.current));
            Ok(())
        }
    }

    fn frames(
        input: &[u8],
        chunk: usize,
        limits: Limits,
        sink: &mut dyn LiteralSink,
    ) -> Result<Vec<Frame>, Error> {
        let mut framer = Framer::new(limits);
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            framer.feed(piece);
            while let Some(frame) = framer.next_frame(sink)? {
                out.push(frame);
            }
        }
        Ok(out)
    }

    #[test]
    fn splits_responses_at_any_chunking() {
        let input = b"* OK hi\r\n* 1 FETCH (UID 5 BODY[] {5}\r\nab\r\nc)\r\na1 OK done\r\n";
        for chunk in 1..input.len() {
            let got = frames(input, chunk, Limits::default(), &mut KeepInMemory).expect("valid");
            let texts: Vec<&[u8]> = got.iter().map(|f| f.bytes.as_slice()).collect();
            assert_eq!(
                texts,
                [
                    &b"* OK hi\r\n"[..],
                    &b"* 1 FETCH (UID 5 BODY[] {5}\r\nab\r\nc)\r\n"[..],
                    &b"a1 OK done\r\n"[..]
                ]
            );
        }
    }

    #[test]
    fn diverts_large_literals() {
        let body = vec![b'x'; 100_000];
        let mut input = b"* 1 FETCH (UID 5 BODY[] {100000}\r\n".to_vec();
        input.extend_from_slice(&body);
        input.extend_from_slice(b")\r\n");
        let mut sink = Collect::default();
        let got = frames(&input, 4096, Limits::default(), &mut sink).expect("valid");
        assert_eq!(got[0].bytes, b"* 1 FETCH (UID 5 BODY[] {0}\r\n)\r\n");
        assert_eq!(got[0].diverted, 1);
        assert_eq!(sink.bodies, vec![body]);
        assert_eq!(sink.prefixes, ["* 1 FETCH (UID 5 BODY[] "]);
    }

    #[test]
    fn limits_hold() {
        let limits = Limits {
            max_line: 100,
            max_depth: 4,
            ..Limits::default()
        };
        let endless = vec![b'a'; 1000];
        assert!(matches!(
            frames(&endless, 7, limits, &mut KeepInMemory),
            Err(Error::LimitExceeded { .. })
        ));
        let deep = b"* 1 FETCH ((((((x))))))\r\n";
        assert!(matches!(
            frames(deep, 3, limits, &mut KeepInMemory),
            Err(Error::LimitExceeded { .. })
        ));
        let huge = b"* 1 FETCH (BODY[] {2147483648}\r\n";
        assert!(matches!(
            frames(huge, 5, Limits::default(), &mut Collect::default()),
            Err(Error::LimitExceeded {
                value: 2147483648,
                ..
            })
        ));
        let absurd = b"* 1 FETCH (BODY[] {99999999999999999999999}\r\n";
        assert!(matches!(
            frames(absurd, 5, Limits::default(), &mut KeepInMemory),
            Err(Error::LimitExceeded { .. })
        ));
        let not_diverted = b"* 1 FETCH (BODY[] {9000000}\r\n";
        assert!(matches!(
            frames(not_diverted, 64, Limits::default(), &mut KeepInMemory),
            Err(Error::LimitExceeded { .. })
        ));
    }

    #[test]
    fn quoted_parentheses_do_not_count() {
        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        let input = b"* LIST (\\X) \"/\" \"((((((\"\r\n";
        assert_eq!(
            frames(input, 2, limits, &mut KeepInMemory)
                .expect("valid")
                .len(),
            1
        );
    }

    #[test]
    fn bare_lf_is_a_protocol_error() {
        assert!(matches!(
            frames(b"* OK x\n", 3, Limits::default(), &mut KeepInMemory),
            Err(Error::Protocol { .. })
        ));
    }
}
