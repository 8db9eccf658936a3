//! The content fingerprint: SHA-256 over the message with CRLF line endings.
//!
//! design.md: "One fingerprint everywhere: SHA-256 over the message with
//! line endings normalised to CRLF, and sizes are compared in that form."
//! [`Fingerprinter`] normalises as it hashes (an LF not preceded by CR
//! counts as CRLF; CRLF and lone CRs are hashed as they are), so a message
//! hashes the same from an IMAP stream (CRLF) and from a file stored with LF,
//! however either is cut into chunks. It also counts the CRLF size.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::crlf::ToCrlf;
use crate::error::{Context, Result};

pub use ferry_core::Fingerprint;

/// Hashes a message fed in chunks of any size, normalising line endings.
#[derive(Debug, Clone, Default)]
pub struct Fingerprinter {
    hasher: Sha256,
    state: ToCrlf,
    crlf_size: u64,
}

impl Fingerprinter {
    /// A fingerprinter at the start of a message.
    pub fn new() -> Self {
        Fingerprinter::default()
    }

    /// Feeds the next chunk of the message (CRLF, LF or mixed).
    pub fn update(&mut self, chunk: &[u8]) {
        let hasher = &mut self.hasher;
        let size = &mut self.crlf_size;
        self.state.push(chunk, |part| {
            hasher.update(part);
            *size += part.len() as u64;
        });
    }

    /// Counts the next chunk towards the CRLF size without hashing it, for
    /// a caller that only needs the size (the fingerprint is then that of
    /// the chunks given to [`Fingerprinter::update`] alone).
    pub fn count(&mut self, chunk: &[u8]) {
        self.crlf_size += self.state.count(chunk);
    }

    /// The fingerprint and the message's size in CRLF form.
    pub fn finish(self) -> (Fingerprint, u64) {
        (
            Fingerprint::from_bytes(self.hasher.finalize().into()),
            self.crlf_size,
        )
    }
}

impl Write for Fingerprinter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The fingerprint of a whole message in memory.
pub fn fingerprint(message: &[u8]) -> (Fingerprint, u64) {
    let mut fp = Fingerprinter::new();
    fp.update(message);
    fp.finish()
}

/// Fingerprints a stored file: `(fingerprint, size in CRLF form)`.
pub fn fingerprint_file(path: &Path) -> Result<(Fingerprint, u64)> {
    let file = File::open(path).at("opening", path)?;
    fingerprint_reader(file).at("reading", path)
}

/// Fingerprints everything `reader` yields.
pub fn fingerprint_reader(mut reader: impl Read) -> io::Result<(Fingerprint, u64)> {
    let mut fp = Fingerprinter::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(fp.finish()),
            Ok(n) => fp.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crlf::{normalize, to_lf};
    use proptest::prelude::*;

    fn chunked(message: &[u8], cuts: &[usize]) -> (Fingerprint, u64) {
        let mut fp = Fingerprinter::new();
        let mut at = 0;
        for &cut in cuts {
            let end = (at + cut).min(message.len());
            fp.update(&message[at..end]);
            at = end;
        }
        fp.update(&message[at..]);
        fp.finish()
    }

    #[test]
    fn known_digest_and_hex() {
        let (fp, size) = fingerprint(b"a\nb\n");
        let (crlf, crlf_size) = fingerprint(b"a\r\nb\r\n");
        assert_eq!(fp, crlf);
        assert_eq!((size, crlf_size), (6, 6));
        let sha = Sha256::digest(b"a\r\nb\r\n");
        assert_eq!(fp.as_bytes()[..], sha[..]);
        assert_eq!(Fingerprint::from_hex(&fp.to_string()), Some(fp));
        assert_eq!(Fingerprint::from_hex("zz"), None);
    }

    proptest! {
        #[test]
        fn lf_and_crlf_versions_hash_alike(
            lines in proptest::collection::vec("[ -~\r]{0,40}", 0..30),
            cuts_a in proptest::collection::vec(0usize..50, 0..12),
            cuts_b in proptest::collection::vec(0usize..50, 0..12),
        ) {
            // A message as IMAP sends it: CRLF line endings (lone CRs allowed).
            let crlf: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\r\n").into_bytes()).collect();
            let lf = to_lf(&crlf);
            let from_imap = chunked(&crlf, &cuts_a);
            let from_file = chunked(&lf, &cuts_b);
            prop_assert_eq!(from_imap, from_file);
            prop_assert_eq!(from_imap.1, normalize(&crlf).len() as u64);
        }
    }
}
