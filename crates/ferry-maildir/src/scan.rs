//! Listing a folder: `readdir` of `new/` and `cur/`, nothing else.
//!
//! No file is stat'ed or opened: a message's key and flags are in its name
//! ([`crate::name`]). `tmp/` is never read. Entries that are not message
//! names (dot files, names with an empty unique part, names that are not
//! UTF-8) are skipped and reported in [`Listing::skipped`], never fatal.
//!
//! `new/` is listed before `cur/`: messages move from `new/` to `cur/`, so
//! one that moves while we list is seen at least once rather than missed.
//!
//! A key found more than once (in both `new/` and `cur/`, or twice in
//! `cur/` with different info: both happen for an instant while another
//! program renames) is listed once in [`Listing::messages`], preferring
//! `cur/`, then the smallest file name; the others are in
//! [`Listing::duplicates`], so that no file is ever silently lost.
//!
//! The listing is repeated while the directories' stamps move under it
//! (see [`crate::stamp`] for the rules). When no attempt is stable, the
//! result is the union of the attempts (for each key, the newest attempt's
//! entry): a message renamed during every attempt is still listed, under a
//! name that may be stale (using it gives [`Error::NotFound`], so rescan),
//! and the listing says it is not stable. An unstable listing proves
//! nothing about deletions.
//!
//! [`Error::NotFound`]: crate::Error::NotFound

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use ferry_core::Flags;

use crate::error::{Context, Result};
use crate::name::MaildirName;
use crate::stamp::{DirTimes, Stamps};

/// `new/` or `cur/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subdir {
    /// `cur/`: seen by a mail reader; names carry `:2,INFO`. Sorts first.
    Cur,
    /// `new/`: not yet seen; names normally have no info.
    New,
}

impl Subdir {
    /// The directory's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Subdir::Cur => "cur",
            Subdir::New => "new",
        }
    }
}

/// One message file: where it is and what its name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    subdir: Subdir,
    name: MaildirName,
}

impl Entry {
    /// An entry for `name` in `subdir`.
    pub fn new(subdir: Subdir, name: MaildirName) -> Self {
        Entry { subdir, name }
    }

    /// Parses a file name found in `subdir`.
    pub fn parse(subdir: Subdir, file_name: &str) -> Result<Self, crate::name::BadName> {
        Ok(Entry::new(subdir, MaildirName::parse(file_name)?))
    }

    /// `new/` or `cur/`.
    pub fn subdir(&self) -> Subdir {
        self.subdir
    }

    /// The parsed name.
    pub fn name(&self) -> &MaildirName {
        &self.name
    }

    /// The message's key (the unique part of the name).
    pub fn key(&self) -> &str {
        self.name.key()
    }

    /// The info letters, verbatim, if the name has an info part.
    pub fn info(&self) -> Option<&str> {
        self.name.info()
    }

    /// The flags the name carries.
    pub fn flags(&self) -> Flags {
        self.name.flags()
    }

    /// The file name.
    pub fn file_name(&self) -> String {
        self.name.file_name()
    }

    /// The path relative to the folder: `cur/NAME` or `new/NAME`.
    pub fn rel_path(&self) -> std::path::PathBuf {
        Path::new(self.subdir.as_str()).join(self.file_name())
    }

    fn order(&self, other: &Entry) -> std::cmp::Ordering {
        (self.key(), self.subdir, self.name.info()).cmp(&(other.key(), other.subdir, other.info()))
    }
}

/// A directory entry that is not a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where it was.
    pub subdir: Subdir,
    /// Its name as found.
    pub name: OsString,
    /// Why it is not a message.
    pub reason: &'static str,
}

/// How hard [`Folder::scan_with`](crate::Folder::scan_with) tries for a
/// stable listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// Listings to try at most (at least one is made).
    pub max_attempts: u32,
    /// When the stamps did not move but are too recent to prove it (see
    /// [`crate::stamp`]), sleep until they are (at most the settle margin:
    /// 100 ms, or 2 s on whole-second file systems) and list again. Once
    /// per scan.
    pub wait_to_settle: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            max_attempts: 5,
            wait_to_settle: true,
        }
    }
}

/// The messages of a folder.
#[derive(Debug, Clone)]
pub struct Listing {
    messages: Vec<Entry>,
    duplicates: Vec<Entry>,
    skipped: Vec<Skipped>,
    stamps: Stamps,
    stable: bool,
    attempts: u32,
}

impl Listing {
    /// One entry per key, sorted by key.
    pub fn messages(&self) -> &[Entry] {
        &self.messages
    }

    /// The entries, one per key, sorted by key, taken out of the listing.
    pub fn into_messages(self) -> Vec<Entry> {
        self.messages
    }

    /// The entry for `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.messages
            .binary_search_by(|e| e.key().cmp(key))
            .ok()
            .map(|i| &self.messages[i])
    }

    /// Further files whose key is already in [`Listing::messages`].
    pub fn duplicates(&self) -> &[Entry] {
        &self.duplicates
    }

    /// Entries that are not messages.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The number of distinct keys.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether the folder holds no message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Whether the listing is provably complete (see [`crate::stamp`]).
    pub fn is_stable(&self) -> bool {
        self.stable
    }

    /// How many listings were made.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The stamps of `new/` and `cur/` after the last attempt.
    pub fn stamps(&self) -> Stamps {
        self.stamps
    }

    /// The times to store so that the next run may skip this folder while
    /// it is unchanged; only a stable listing has them.
    pub fn proof(&self) -> Option<DirTimes> {
        self.stable.then(|| self.stamps.times())
    }
}

/// One attempt's raw entries.
struct Raw {
    entries: Vec<Entry>,
    skipped: Vec<Skipped>,
}

/// Scans the folder at `dir` (see the module documentation).
pub(crate) fn scan(dir: &Path, options: ScanOptions) -> Result<Listing> {
    let mut attempts: Vec<Raw> = Vec::new();
    let mut waited = false;
    loop {
        let started = SystemTime::now();
        let before = Stamps::of(dir)?;
        let raw = list(dir)?;
        let after = Stamps::of(dir)?;
        let count = attempts.len() as u32 + 1;
        let quiet = before == after;
        if quiet && before.settled_at(started) {
            return Ok(finish(raw, after, true, count));
        }
        attempts.push(raw);
        let may_wait = options.wait_to_settle && !waited;
        // A quiet listing cannot be bettered by listing again at once.
        if count >= options.max_attempts.max(1) || (quiet && !may_wait) {
            return Ok(finish(union(attempts), after, false, count));
        }
        if quiet {
            waited = true;
            std::thread::sleep(before.settles_in(SystemTime::now()) + Duration::from_millis(1));
        }
    }
}

/// Lists `new/` then `cur/`.
fn list(dir: &Path) -> Result<Raw> {
    let mut raw = Raw {
        entries: Vec::new(),
        skipped: Vec::new(),
    };
    for subdir in [Subdir::New, Subdir::Cur] {
        list_subdir(&dir.join(subdir.as_str()), subdir, &mut raw)?;
    }
    Ok(raw)
}

fn list_subdir(path: &Path, subdir: Subdir, raw: &mut Raw) -> Result<()> {
    for item in fs::read_dir(path).at("listing", path)? {
        let name = item.at("listing", path)?.file_name();
        let parsed = name
            .into_string()
            .map_err(|name| (name, "not UTF-8"))
            .and_then(|s| {
                MaildirName::parse_owned(s).map_err(|bad| (OsString::from(bad.name), bad.reason))
            });
        match parsed {
            Ok(name) => raw.entries.push(Entry::new(subdir, name)),
            Err((name, reason)) => raw.skipped.push(Skipped {
                subdir,
                name,
                reason,
            }),
        }
    }
    Ok(())
}

/// Sorts and splits one attempt into messages and duplicates.
fn finish(raw: Raw, stamps: Stamps, stable: bool, attempts: u32) -> Listing {
    let mut entries = raw.entries;
    entries.sort_unstable_by(Entry::order);
    let mut messages: Vec<Entry> = Vec::with_capacity(entries.len());
    let mut duplicates = Vec::new();
    for entry in entries {
        match messages.last() {
            Some(last) if last.key() == entry.key() => duplicates.push(entry),
            _ => messages.push(entry),
        }
    }
    Listing {
        messages,
        duplicates,
        skipped: raw.skipped,
        stamps,
        stable,
        attempts,
    }
}

/// The union of unstable attempts: for each key the newest attempt's
/// entries; duplicates and skipped entries of the last attempt only.
fn union(attempts: Vec<Raw>) -> Raw {
    let mut by_key: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    let mut skipped = Vec::new();
    for raw in attempts {
        let mut fresh: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        for entry in raw.entries {
            fresh
                .entry(entry.key().to_string())
                .or_default()
                .push(entry);
        }
        by_key.extend(fresh);
        skipped = raw.skipped;
    }
    Raw {
        entries: by_key.into_values().flatten().collect(),
        skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(subdir: Subdir, name: &str) -> Entry {
        Entry::parse(subdir, name).expect("valid")
    }

    fn stamps() -> Stamps {
        let d = crate::stamp::DirStamp {
            mtime_ns: 0,
            ctime_ns: 0,
        };
        Stamps { new: d, cur: d }
    }

    #[test]
    fn duplicates_prefer_cur_then_smallest_name() {
        let raw = Raw {
            entries: vec![
                entry(Subdir::Cur, "k:2,S"),
                entry(Subdir::New, "k"),
                entry(Subdir::Cur, "k:2,FS"),
                entry(Subdir::New, "j"),
            ],
            skipped: vec![],
        };
        let listing = finish(raw, stamps(), true, 1);
        let names: Vec<String> = listing.messages().iter().map(Entry::file_name).collect();
        assert_eq!(names, ["j", "k:2,FS"]);
        let dups: Vec<String> = listing.duplicates().iter().map(Entry::file_name).collect();
        assert_eq!(dups, ["k:2,S", "k"]);
        assert_eq!(listing.get("k").map(Entry::subdir), Some(Subdir::Cur));
        assert!(listing.get("x").is_none());
    }

    #[test]
    fn union_keeps_the_newest_sighting() {
        let first = Raw {
            entries: vec![entry(Subdir::New, "a"), entry(Subdir::Cur, "b:2,")],
            skipped: vec![],
        };
        let second = Raw {
            entries: vec![entry(Subdir::Cur, "a:2,S")],
            skipped: vec![],
        };
        let listing = finish(union(vec![first, second]), stamps(), false, 2);
        let names: Vec<String> = listing.messages().iter().map(Entry::file_name).collect();
        assert_eq!(names, ["a:2,S", "b:2,"]);
        assert!(listing.proof().is_none());
    }
}
