//! Line endings: messages are stored with LF and travel with CRLF.
//!
//! Two conversions, both streaming and correct across chunk boundaries:
//!
//! - [`ToLf`] turns a message as IMAP sends it into the stored form: a CRLF
//!   becomes LF, except when the CR itself follows a CR (`\r\r\n` is kept as
//!   is), and every other byte, a lone CR included, is kept.
//! - [`CrlfReader`] (and [`normalize`]) turn the stored form back: an LF
//!   not preceded by CR becomes CRLF; everything else is kept.
//!
//! The exception for `\r\r\n` makes the pair exact: for any input `x`,
//! `normalize(to_lf(x)) == normalize(x)`, so a message read back from disk
//! is the message that arrived (when it arrived with CRLF line endings, as
//! IMAP requires), and its fingerprint ([`crate::fingerprint`]) is the same
//! on both sides.

use std::io::{self, Read};

/// Streaming CRLF -> LF conversion for storing a message.
#[derive(Debug, Default, Clone)]
pub struct ToLf {
    /// A CR was the last byte seen and is not yet written.
    held: bool,
    /// The held CR itself followed a CR.
    held_after_cr: bool,
}

impl ToLf {
    /// A converter at the start of a message.
    pub fn new() -> Self {
        ToLf::default()
    }

    /// Converts `input`, appending to `out`. Runs without a CR are copied
    /// whole (memchr finds the next CR).
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + 1);
        while let Some((&first, rest)) = input.split_first() {
            if self.held {
                match first {
                    b'\r' => {
                        out.push(b'\r');
                        self.held_after_cr = true;
                        input = rest;
                    }
                    b'\n' => {
                        if self.held_after_cr {
                            out.push(b'\r');
                        }
                        out.push(b'\n');
                        self.held = false;
                        input = rest;
                    }
                    _ => {
                        out.push(b'\r');
                        self.held = false;
                    }
                }
                continue;
            }
            match memchr::memchr(b'\r', input) {
                None => {
                    out.extend_from_slice(input);
                    return;
                }
                Some(i) => {
                    out.extend_from_slice(&input[..i]);
                    self.held = true;
                    self.held_after_cr = false;
                    input = &input[i + 1..];
                }
            }
        }
    }

    /// Ends the message, appending a CR still held back.
    pub fn finish(self, out: &mut Vec<u8>) {
        if self.held {
            out.push(b'\r');
        }
    }
}

/// Converts a whole message to the stored form.
pub fn to_lf(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut conv = ToLf::new();
    conv.push(input, &mut out);
    conv.finish(&mut out);
    out
}

/// Streaming LF -> CRLF normalisation state: whether the last byte was CR.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ToCrlf {
    last_cr: bool,
}

impl ToCrlf {
    /// Calls `emit` with the normalised form of `input`, in slices (memchr
    /// finds each LF).
    pub(crate) fn push(&mut self, input: &[u8], mut emit: impl FnMut(&[u8])) {
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', input) {
            let after_cr = match i {
                0 => self.last_cr,
                _ => input[i - 1] == b'\r',
            };
            if !after_cr {
                emit(&input[start..i]);
                emit(b"\r\n");
                start = i + 1;
            }
        }
        emit(&input[start..]);
        if let Some(&last) = input.last() {
            self.last_cr = last == b'\r';
        }
    }

    /// The length of the normalised form of `input`.
    pub(crate) fn count(&mut self, input: &[u8]) -> u64 {
        let mut len = 0u64;
        self.push(input, |part| len += part.len() as u64);
        len
    }
}

/// Normalises a whole message to CRLF line endings.
pub fn normalize(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 32);
    ToCrlf::default().push(input, |part| out.extend_from_slice(part));
    out
}

/// The length of the CRLF form of everything `reader` yields.
pub fn crlf_len(mut reader: impl Read) -> io::Result<u64> {
    let mut state = ToCrlf::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(len),
            Ok(n) => len += state.count(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads a stored (LF) message as CRLF, for IMAP APPEND.
///
/// [`Folder::open_crlf`](crate::Folder::open_crlf) also counts the converted
/// length first ([`CrlfReader::crlf_len`]), which APPEND must announce
/// before it sends the literal.
#[derive(Debug)]
pub struct CrlfReader<R> {
    inner: R,
    state: ToCrlf,
    raw: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    len: Option<u64>,
}

impl<R: Read> CrlfReader<R> {
    /// Wraps `inner`; the converted length is unknown.
    pub fn new(inner: R) -> Self {
        CrlfReader {
            inner,
            state: ToCrlf::default(),
            raw: vec![0u8; 32 * 1024],
            out: Vec::with_capacity(33 * 1024),
            pos: 0,
            len: None,
        }
    }

    /// Wraps `inner` whose converted length was counted beforehand.
    pub fn with_len(inner: R, len: u64) -> Self {
        CrlfReader {
            len: Some(len),
            ..CrlfReader::new(inner)
        }
    }

    /// The number of bytes this reader yields in all, if it was counted.
    pub fn crlf_len(&self) -> Option<u64> {
        self.len
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn refill(&mut self) -> io::Result<bool> {
        let n = loop {
            match self.inner.read(&mut self.raw) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        self.out.clear();
        self.pos = 0;
        let out = &mut self.out;
        self.state
            .push(&self.raw[..n], |part| out.extend_from_slice(part));
        Ok(n > 0)
    }
}

impl<R: Read> Read for CrlfReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos == self.out.len() {
            if !self.refill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chunked_to_lf(input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut conv = ToLf::new();
        let mut at = 0;
        for &cut in cuts {
            let end = (at + cut).min(input.len());
            conv.push(&input[at..end], &mut out);
            at = end;
        }
        conv.push(&input[at..], &mut out);
        conv.finish(&mut out);
        out
    }

    #[test]
    fn stored_form() {
        assert_eq!(to_lf(b"a\r\nb\r\n"), b"a\nb\n");
        assert_eq!(to_lf(b"lone\rcr\r"), b"lone\rcr\r");
        assert_eq!(to_lf(b"a\r\r\nb"), b"a\r\r\nb");
        assert_eq!(to_lf(b"bare\nlf"), b"bare\nlf");
        assert_eq!(normalize(b"a\nb\r\nc\rd"), b"a\r\nb\r\nc\rd");
    }

    #[test]
    fn reader_yields_counted_length() {
        let stored = b"Subject: x\n\nline\r\nlone\rcr\n\n".repeat(5000);
        let len = crlf_len(&stored[..]).expect("count");
        let mut out = Vec::new();
        let mut reader = CrlfReader::with_len(&stored[..], len);
        reader.read_to_end(&mut out).expect("read");
        assert_eq!(out.len() as u64, len);
        assert_eq!(out, normalize(&stored));
    }

    /// A reader that yields at most `step` bytes per read.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// The conversions byte by byte, as the rules say, to check the fast
    /// ones against.
    fn reference_to_lf(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let crlf = input[i] == b'\r' && input.get(i + 1) == Some(&b'\n');
            let after_cr = i > 0 && input[i - 1] == b'\r';
            if crlf && !after_cr {
                out.push(b'\n');
                i += 2;
            } else {
                out.push(input[i]);
                i += 1;
            }
        }
        out
    }

    fn reference_normalize(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &b) in input.iter().enumerate() {
            if b == b'\n' && (i == 0 || input[i - 1] != b'\r') {
                out.push(b'\r');
            }
            out.push(b);
        }
        out
    }

    proptest! {
        #[test]
        fn the_conversions_follow_the_rules(
            input in proptest::collection::vec(prop_oneof![
                Just(b'\r'), Just(b'\n'), Just(b'a'), any::<u8>()
            ], 0..300),
            cuts in proptest::collection::vec(0usize..40, 0..10),
        ) {
            prop_assert_eq!(chunked_to_lf(&input, &cuts), reference_to_lf(&input));
            prop_assert_eq!(normalize(&input), reference_normalize(&input));
        }

        #[test]
        fn storing_then_reading_gives_the_crlf_form(
            input in proptest::collection::vec(prop_oneof![
                Just(b'\r'), Just(b'\n'), Just(b'a'), any::<u8>()
            ], 0..300),
            cuts in proptest::collection::vec(0usize..40, 0..10),
        ) {
            let stored = chunked_to_lf(&input, &cuts);
            prop_assert_eq!(&stored, &to_lf(&input));
            prop_assert_eq!(normalize(&stored), normalize(&input));
            let mut back = Vec::new();
            let trickle = Trickle { data: &stored, step: cuts.first().copied().unwrap_or(1).max(1) };
            CrlfReader::new(trickle).read_to_end(&mut back).expect("read");
            prop_assert_eq!(back.len() as u64, crlf_len(&stored[..]).expect("count"));
            prop_assert_eq!(back, normalize(&input));
        }
    }
}
