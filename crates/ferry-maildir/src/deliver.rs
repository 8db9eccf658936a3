//! Delivery: a message from a stream into `tmp/`, then into `cur/` or `new/`.
//!
//! The order (design.md, "Crash safety"):
//!
//! 1. create `tmp/KEY` with `O_EXCL` (mode 0600);
//! 2. stream the message in, converting CRLF to LF ([`crate::crlf`]) and
//!    fingerprinting it ([`crate::fingerprint`]) as it passes;
//! 3. set the file's mtime to the internal date, so the durable file
//!    already carries it;
//! 4. fsync the file;
//! 5. rename it into `cur/KEY:2,FLAGS` (or `new/KEY`) without replacing
//!    anything (`renameat2(RENAME_NOREPLACE)`);
//! 6. the directory fsync is the caller's, through the returned
//!    [`Unsynced`], so that a batch pays one per directory.
//!
//! There is one implementation, push-wise: [`Folder::begin_delivery`]
//! returns a [`Delivery`] that takes the message in pieces as they arrive
//! (an IMAP literal being read, say) and is finished or dropped;
//! [`Folder::deliver`] feeds one from an [`io::Read`].
//!
//! On any error the `tmp/` file is removed; nothing partial is ever outside
//! `tmp/`. A crash leaves at most a file in `tmp/`, which mail readers clean
//! up after 36 hours, and which a retry with the same key replaces.
//!
//! Keys follow the Maildir specification: `SECS.MUSECSPPIDQCOUNTER.HOST`,
//! with `/` and `:` in the host name written `\057` and `\072`. The caller
//! may choose the key beforehand ([`unique_key`]) so that its journal can
//! find the delivered file by name after a crash.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_core::Flags;
use filetime::FileTime;

use crate::crlf::ToLf;
use crate::durable::{DirtyDirs, Unsynced};
use crate::error::{Context, Error, Result};
use crate::fingerprint::{Fingerprint, Fingerprinter};
use crate::folder::Folder;
use crate::name::MaildirName;
use crate::ops::rename_noreplace;
use crate::scan::{Entry, Subdir};
use crate::step::{self, Step, StepHook};

/// What to deliver, apart from the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The key (unique part of the file name); [`unique_key`] by default.
    pub key: String,
    /// The flags, written as `:2,` info (keywords have no letter and are
    /// left to the caller's records).
    pub flags: Flags,
    /// The internal date in seconds since the epoch, set as the file's mtime.
    pub internal_date: Option<i64>,
    /// Deliver into `new/` (without info). Honoured only when `flags` has
    /// no Maildir letter, so that no flag is lost; otherwise `cur/`.
    pub into_new: bool,
}

impl Default for NewMessage {
    fn default() -> Self {
        NewMessage {
            key: unique_key(),
            flags: Flags::new(),
            internal_date: None,
            into_new: false,
        }
    }
}

impl NewMessage {
    /// A message for `cur/` with a fresh key and no flags.
    pub fn new() -> Self {
        NewMessage::default()
    }
}

/// A delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Where it is now.
    pub entry: Entry,
    /// Its size on disk (LF form).
    pub size: u64,
    /// Its size in CRLF form, the one compared with the server's.
    pub crlf_size: u64,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
}

/// A new key per the Maildir specification, unique on this host.
pub fn unique_key() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        hostname()
    )
}

/// The host name, escaped for a Maildir name.
fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let uname = rustix::system::uname();
        let raw = uname.nodename().to_string_lossy();
        let host = if raw.is_empty() { "localhost" } else { &raw };
        escape_host(host)
    })
}

fn escape_host(host: &str) -> String {
    host.replace('/', "\\057").replace(':', "\\072")
}

/// The size of the chunks read by [`Folder::deliver`] and written to disk.
const CHUNK: usize = 64 * 1024;

/// A delivery in progress, fed push-wise: [`Folder::begin_delivery`]
/// creates the `tmp/` file (step 1), [`Delivery::write`] takes the next
/// bytes of the message (step 2, in chunks of any size, with CRLF, LF or
/// mixed line endings), and [`Delivery::finish`] does steps 3 to 5.
///
/// Dropped before [`Delivery::finish`] succeeded (the source failed, the
/// caller gave up), it removes its `tmp/` file: nothing is left outside
/// `tmp/`, and nothing inside it either unless the process dies first.
///
/// Writes are buffered up to 64 KiB, so the memory held does not grow with
/// the message, however small the pieces it comes in.
#[must_use = "a delivery that is not finished is removed when dropped"]
pub struct Delivery {
    folder: Folder,
    msg: NewMessage,
    tmp: PathBuf,
    file: File,
    conv: ToLf,
    fp: Fingerprinter,
    buf: Vec<u8>,
    size: u64,
    /// A write failed: the file is incomplete and must not be published.
    failed: bool,
    /// The file left `tmp/` (or was removed): nothing to clean up.
    done: bool,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("tmp", &self.tmp)
            .field("size", &self.size)
            .field("failed", &self.failed)
            .finish()
    }
}

impl Delivery {
    /// The message being delivered (its key, flags and date).
    pub fn message(&self) -> &NewMessage {
        &self.msg
    }

    /// Step 2 for the next bytes: converted to LF, fingerprinted, written.
    /// After an error the delivery can only be dropped.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        if self.failed {
            return Err(self.poisoned());
        }
        self.fp.update(data);
        self.conv.push(data, &mut self.buf);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Steps 3 to 5: the rest written, the mtime set to the internal date,
    /// the file fsynced and renamed into `cur/` (or `new/`) without
    /// replacing anything. The directory fsync is left to the returned
    /// [`Unsynced`]. On error the `tmp/` file is removed (when `self` drops).
    pub fn finish(mut self) -> Result<Unsynced<Delivered>> {
        if self.failed {
            return Err(self.poisoned());
        }
        std::mem::take(&mut self.conv).finish(&mut self.buf);
        self.flush()?;
        self.seal()?;
        let entry = target_entry(&self.msg);
        let dest = self.folder.entry_path(&entry);
        step::run(self.folder.hook(), Step::Rename, &dest, || {
            rename_noreplace(&self.tmp, &dest)
        })
        .at("delivering into", &dest)?;
        self.done = true;
        let dirs = DirtyDirs::one(self.folder.subdir(entry.subdir()), self.folder.hook());
        let (fingerprint, crlf_size) = std::mem::take(&mut self.fp).finish();
        let delivered = Delivered {
            entry,
            size: self.size,
            crlf_size,
            fingerprint,
        };
        Ok(Unsynced::new(delivered, dirs))
    }

    /// Writes out the buffer; an error poisons the delivery.
    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let (file, buf, tmp) = (&mut self.file, &self.buf, &self.tmp);
        let written = step::run(self.folder.hook(), Step::Write, tmp, || file.write_all(buf));
        if let Err(e) = written {
            self.failed = true;
            return Err(Error::io("writing", tmp.clone(), e));
        }
        self.size += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Steps 3 and 4: the internal date as mtime, then fsync.
    fn seal(&mut self) -> Result<()> {
        let (hook, tmp, file) = (self.folder.hook(), &self.tmp, &self.file);
        if let Some(secs) = self.msg.internal_date {
            let mtime = FileTime::from_unix_time(secs, 0);
            step::run(hook, Step::SetMtime, tmp, || {
                filetime::set_file_handle_times(file, None, Some(mtime))
            })
            .at("setting the internal date of", tmp)?;
        }
        step::run(hook, Step::SyncFile, tmp, || file.sync_all()).at("fsyncing", tmp)
    }

    fn poisoned(&self) -> Error {
        let why = io::Error::other("an earlier write of this delivery failed");
        Error::io("finishing", self.tmp.clone(), why)
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Folder {
    /// Delivers a message read from `message` (see the module docs): a
    /// [`Folder::begin_delivery`] fed from the reader. An error reading
    /// `message` is [`Error::Source`].
    pub fn deliver(&self, msg: &NewMessage, mut message: impl Read) -> Result<Unsynced<Delivered>> {
        let mut delivery = self.begin_delivery(msg)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match message.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    let folder = self.path().to_path_buf();
                    return Err(Error::Source { folder, source });
                }
            };
            delivery.write(&buf[..n])?;
        }
        delivery.finish()
    }

    /// Starts a push-wise delivery of `msg` (see [`Delivery`]): checks the
    /// key and creates `tmp/KEY` (step 1).
    pub fn begin_delivery(&self, msg: &NewMessage) -> Result<Delivery> {
        MaildirName::check_key(&msg.key).map_err(|bad| Error::BadKey {
            key: msg.key.clone(),
            reason: bad.reason,
        })?;
        let tmp = self.path().join("tmp").join(&msg.key);
        let file = create_tmp(&tmp, self.hook())?;
        Ok(Delivery {
            folder: self.clone(),
            msg: msg.clone(),
            tmp,
            file,
            conv: ToLf::new(),
            fp: Fingerprinter::new(),
            buf: Vec::with_capacity(CHUNK + 1),
            size: 0,
            failed: false,
            done: false,
        })
    }

    /// Adopts an existing message file as the result of an operation: its
    /// directory is fsynced with the batch. For a message found in place
    /// rather than put there now, such as one renamed into place by an
    /// earlier run that died before its directory fsync: replaying that
    /// delivery must make it durable before it is recorded.
    pub fn adopt(&self, entry: &Entry) -> Unsynced<Entry> {
        let dirs = DirtyDirs::one(self.subdir(entry.subdir()), self.hook());
        Unsynced::new(entry.clone(), dirs)
    }
}

/// Step 1. A `tmp/` file with this key can only be debris of an earlier,
/// interrupted delivery of the same message (keys are unique): it is
/// replaced. A missing `tmp/` is recreated.
fn create_tmp(tmp: &Path, hook: Option<&StepHook>) -> Result<File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(tmp)
    };
    let first = step::run(hook, Step::CreateTmp, tmp, open);
    match first {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(tmp).at("removing stale", tmp)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Some tools remove an empty tmp/; Dovecot recreates it, and so
            // do we. If the folder itself is gone, this fails: rescan.
            let dir = tmp.parent().unwrap_or(tmp);
            fs::create_dir(dir).at("recreating", dir)?;
        }
        other => return other.at("creating", tmp),
    }
    step::run(hook, Step::CreateTmp, tmp, open).at("creating", tmp)
}

/// Where a delivery goes: `new/KEY`, or `cur/KEY:2,FLAGS`.
fn target_entry(msg: &NewMessage) -> Entry {
    if msg.into_new && msg.flags.to_maildir_info().is_empty() {
        Entry::new(Subdir::New, MaildirName::bare(&msg.key))
    } else {
        Entry::new(
            Subdir::Cur,
            MaildirName::with_flags(&msg.key, &msg.flags, None),
        )
    }
}

/// The path a delivery of `msg` would end at in `folder` (for a journal).
pub fn target_path(folder: &Folder, msg: &NewMessage) -> PathBuf {
    folder.entry_path(&target_entry(msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_spec() {
        let a = unique_key();
        let b = unique_key();
        assert_ne!(a, b);
        assert!(MaildirName::check_key(&a).is_ok(), "{a}");
        let (secs, rest) = a.split_once(".M").expect("secs.M");
        assert!(secs.parse::<u64>().is_ok());
        assert!(rest.contains('P') && rest.contains('Q'), "{a}");
        assert_eq!(escape_host("a/b:c"), "a\\057b\\072c");
    }
}
