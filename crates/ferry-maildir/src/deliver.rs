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
//! On any error the `tmp/` file is removed; nothing partial is ever outside
//! `tmp/`. A crash leaves at most a file in `tmp/`, which mail readers clean
//! up after 36 hours, and which a retry with the same key replaces.
//!
//! Keys follow the Maildir specification: `SECS.MUSECSPPIDQCOUNTER.HOST`,
//! with `/` and `:` in the host name written `\057` and `\072`. The caller
//! may choose the key beforehand ([`unique_key`]) so that its journal can
//! find the delivered file by name after a crash.

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

/// Removes the `tmp/` file unless disarmed.
struct TmpGuard<'a> {
    path: &'a Path,
    armed: bool,
}

impl Drop for TmpGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(self.path);
        }
    }
}

impl Folder {
    /// Delivers a message read from `message` (see the module docs).
    pub fn deliver(&self, msg: &NewMessage, message: impl Read) -> Result<Unsynced<Delivered>> {
        MaildirName::check_key(&msg.key).map_err(|bad| Error::BadKey {
            key: msg.key.clone(),
            reason: bad.reason,
        })?;
        let tmp = self.path().join("tmp").join(&msg.key);
        let mut guard = TmpGuard {
            path: &tmp,
            armed: true,
        };
        let stats = self.write_tmp(&tmp, message, msg.internal_date)?;
        let entry = target_entry(msg);
        let dest = self.entry_path(&entry);
        step::run(self.hook(), Step::Rename, &dest, || {
            rename_noreplace(&tmp, &dest)
        })
        .at("delivering into", &dest)?;
        guard.armed = false;
        let dirs = DirtyDirs::one(self.subdir(entry.subdir()), self.hook());
        let (fingerprint, crlf_size) = stats.fingerprint;
        let delivered = Delivered {
            entry,
            size: stats.size,
            crlf_size,
            fingerprint,
        };
        Ok(Unsynced::new(delivered, dirs))
    }

    /// Steps 1-4: a complete, fsynced, closed file in `tmp/`.
    fn write_tmp(&self, tmp: &Path, message: impl Read, date: Option<i64>) -> Result<Stats> {
        let file = create_tmp(tmp, self.hook())?;
        let stats = self.stream(&file, tmp, message)?;
        if let Some(secs) = date {
            let mtime = FileTime::from_unix_time(secs, 0);
            step::run(self.hook(), Step::SetMtime, tmp, || {
                filetime::set_file_handle_times(&file, None, Some(mtime))
            })
            .at("setting the internal date of", tmp)?;
        }
        step::run(self.hook(), Step::SyncFile, tmp, || file.sync_all()).at("fsyncing", tmp)?;
        Ok(stats)
    }

    /// Step 2: copies `message` into `file`, CRLF -> LF, fingerprinting.
    fn stream(&self, mut file: &File, tmp: &Path, mut message: impl Read) -> Result<Stats> {
        let mut conv = ToLf::new();
        let mut fp = Fingerprinter::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::with_capacity(buf.len() + 1);
        let mut size = 0u64;
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
            fp.update(&buf[..n]);
            out.clear();
            conv.push(&buf[..n], &mut out);
            size += self.write_chunk(&mut file, tmp, &out)?;
        }
        out.clear();
        conv.finish(&mut out);
        size += self.write_chunk(&mut file, tmp, &out)?;
        Ok(Stats {
            size,
            fingerprint: fp.finish(),
        })
    }

    fn write_chunk(&self, file: &mut &File, tmp: &Path, bytes: &[u8]) -> Result<u64> {
        if bytes.is_empty() {
            return Ok(0);
        }
        step::run(self.hook(), Step::Write, tmp, || file.write_all(bytes)).at("writing", tmp)?;
        Ok(bytes.len() as u64)
    }
}

struct Stats {
    size: u64,
    fingerprint: (Fingerprint, u64),
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
