//! Reading messages out: each file counted, then pushed as CRLF in chunks.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::unix::fs::MetadataExt;

use ferry_core::MessageKey;
use ferry_core::store::{BodyTarget, Incoming};
use ferry_maildir::CrlfReader;
use ferry_maildir::crlf::crlf_len;

use super::{At, CHUNK, Error, MaildirStore};

/// How much of a file's start is searched for its Message-ID header.
const HEAD: usize = 64 * 1024;

/// Why one message was not sent.
pub(super) enum Failure {
    /// Only this message: the others go on.
    Item(Error),
    /// The batch ends: the target failed, or a message broke off after
    /// [`BodyTarget::begin`] (the target cannot take it back).
    Batch(Error),
}

impl MaildirStore {
    /// Sends the message `key` of `at` into `target`.
    pub(super) fn read_one(
        &mut self,
        at: &mut At,
        key: &MessageKey,
        target: &mut dyn BodyTarget,
        buf: &mut [u8],
    ) -> Result<(), Failure> {
        let name = at.name_of(key).map_err(Failure::Item)?;
        let opened = self.with_entry(at, name, |dir, entry| {
            Ok((entry.clone(), dir.open_message(entry)?))
        });
        let Some((entry, mut file)) = opened.map_err(Failure::Item)? else {
            return Err(Failure::Item(at.no_message(name)));
        };
        let io_error = |op, e| {
            let path = at.dir.entry_path(&entry);
            let source = ferry_maildir::Error::Io {
                op,
                path,
                source: e,
            };
            self.fail(&at.name, Some(name), source)
        };
        let mtime = file.metadata().map(|m| m.mtime());
        let mtime = mtime.map_err(|e| Failure::Item(io_error("reading", e)))?;
        let (size, message_id) =
            measure(&mut file).map_err(|e| Failure::Item(io_error("reading", e)))?;
        let incoming = Incoming {
            source: key.clone(),
            flags: entry.flags(),
            internal_date: Some(mtime),
            size,
            message_id,
            planned_key: None,
        };
        let target_error = |source| Failure::Batch(at.target_error(key, source));
        target.begin(&incoming).map_err(target_error)?;
        match push(file, size, target, buf) {
            Ok(()) => {}
            Err(Broke::Target(e)) => return Err(target_error(e)),
            Err(Broke::Read(e)) => return Err(Failure::Batch(io_error("reading", e))),
            Err(Broke::Changed(read)) => {
                let (folder, key) = (at.name.clone(), name.to_string());
                let changed = Error::Changed {
                    folder,
                    key,
                    announced: size,
                    read,
                };
                return Err(Failure::Batch(changed));
            }
        }
        target.end().map_err(target_error)
    }
}

/// Why [`push`] stopped.
enum Broke {
    Target(io::Error),
    Read(io::Error),
    /// The file yielded other than the announced length (so far: this).
    Changed(u64),
}

/// Pushes the CRLF form of `file`, exactly `size` bytes, in chunks of at
/// most `buf.len()`.
fn push(file: File, size: u64, target: &mut dyn BodyTarget, buf: &mut [u8]) -> Result<(), Broke> {
    let mut reader = CrlfReader::new(file);
    let mut sent = 0u64;
    loop {
        let n = fill(&mut reader, buf).map_err(Broke::Read)?;
        if n == 0 {
            break;
        }
        let total = sent + n as u64;
        if total > size {
            return Err(Broke::Changed(total));
        }
        target.write(&buf[..n]).map_err(Broke::Target)?;
        sent = total;
    }
    if sent == size {
        Ok(())
    } else {
        Err(Broke::Changed(sent))
    }
}

/// Reads until `buf` is full or the reader is done.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The CRLF length of a file and its Message-ID, in one pass; the file is
/// rewound after.
fn measure(file: &mut File) -> io::Result<(u64, Option<String>)> {
    let mut head = Vec::with_capacity(CHUNK.min(HEAD));
    (&mut *file).take(HEAD as u64).read_to_end(&mut head)?;
    let id = message_id(&head, head.len() < HEAD);
    let len = crlf_len(head.as_slice().chain(&mut *file))?;
    file.rewind()?;
    Ok((len, id))
}

/// The Message-ID of the message whose start is `head` (see
/// [`ferry_core::header_message_id`]).
pub(super) fn message_id(head: &[u8], whole: bool) -> Option<String> {
    ferry_core::header_message_id(head, whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_found_unfolded_and_only_in_the_header() {
        let simple = b"From: a\r\nMessage-ID: <x@y>\r\nSubject: s\r\n\r\nbody";
        assert_eq!(message_id(simple, true).as_deref(), Some("<x@y>"));
        let folded = b"message-id:\n  <long@example.org>\nTo: b\n\n";
        assert_eq!(
            message_id(folded, true).as_deref(),
            Some("<long@example.org>")
        );
        let in_body = b"Subject: s\n\nMessage-ID: <body@x>\n";
        assert_eq!(message_id(in_body, true), None);
        let last = b"Message-Id: <end@x>";
        assert_eq!(message_id(last, true).as_deref(), Some("<end@x>"));
        assert_eq!(message_id(b"Message-ID: <cut@x>\n  more", false), None);
        assert_eq!(message_id(b"Message-ID:\n\nbody", true), None);
        assert_eq!(message_id(b"Message-ID: <\xff>\n\n", true), None);
    }
}
