//! What the store last saw of a few folders: each key's file.
//!
//! A listing costs a `readdir` of the whole folder; the operations of a
//! batch look messages up by key. The cache keeps the last listing of the
//! few folders used most recently, kept up to date with the store's own
//! changes. It can be stale (another program renamed or removed a file):
//! every use of an entry that gives "not found" rescans, once per batch
//! (see `MaildirStore::with_entry`).
//!
//! Once the engine has planned a folder it says which of its messages the
//! run will touch ([`Cache::keep_only`]): the listing is cut down to those
//! and kept, whatever the number of folders, so that carrying out the plan
//! of a large account does not list every folder a second time. Once the
//! folder's plan is carried out, it is cut again, to the messages that
//! moves later in the run use in it (those leaving it; in a target, the
//! moving message and its partner), so that a first sync does not keep
//! every message it delivered. A cut listing is partial: a key
//! it lacks is unknown, not absent.
//!
//! A listing is kept as the scan made it (its entries, sorted by key), and
//! the store's changes in a map beside it: a folder of 12,000 messages of
//! which a run touches a few costs no copy or hash of the others.
//!
//! A folder the engine proved unchanged since the last sync is not listed
//! at all: the cache then holds, partially, the files the state names for
//! the messages the run touches ([`Cache::assume`]).

use std::collections::{HashMap, VecDeque};

use ferry_maildir::Entry;

/// How many whole listings are remembered (each costs about 100 bytes a
/// message).
const SLOTS: usize = 4;

/// The remembered listings, the most recently filled first.
#[derive(Debug, Default)]
pub(super) struct Cache {
    slots: VecDeque<Slot>,
}

/// One folder's listing: the entries as listed (taken over from the
/// listing, sorted by key: nothing is copied or hashed for the many
/// messages a run does not touch), and the store's changes since.
#[derive(Debug)]
struct Slot {
    folder: String,
    /// Sorted by key.
    listed: Vec<Entry>,
    /// What the store changed since: a key's file now, or `None` (gone).
    changed: HashMap<String, Option<Entry>>,
    /// Whether `listed` was the whole folder (else only the keys kept).
    complete: bool,
}

impl Slot {
    fn new(folder: &str, mut listed: Vec<Entry>, complete: bool) -> Slot {
        if !listed.is_sorted_by(|a, b| a.key() <= b.key()) {
            listed.sort_by(|a, b| a.key().cmp(b.key()));
        }
        Slot {
            folder: folder.to_string(),
            listed,
            changed: HashMap::new(),
            complete,
        }
    }

    fn lookup(&self, key: &str) -> Lookup {
        let found = match self.changed.get(key) {
            Some(now) => now.as_ref(),
            None => {
                (self.listed.binary_search_by(|e| e.key().cmp(key)).ok()).map(|at| &self.listed[at])
            }
        };
        match (found, self.complete) {
            (Some(entry), _) => Lookup::Found(entry.clone()),
            (None, true) => Lookup::Absent,
            (None, false) => Lookup::Unknown,
        }
    }
}

/// What the cache knows of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Lookup {
    /// Its file.
    Found(Entry),
    /// Not in the folder (a whole listing lacks it).
    Absent,
    /// No listing says (none remembered, or a partial one lacks it).
    Unknown,
}

impl Cache {
    /// Remembers `listed` (a listing's messages) as what `folder` holds now.
    pub(super) fn fill(&mut self, folder: &str, listed: Vec<Entry>) {
        self.forget(folder);
        self.slots.push_front(Slot::new(folder, listed, true));
        self.evict();
    }

    /// Cuts the remembered listing of `folder` down to the keys `keep`
    /// accepts (a pure predicate: it is asked once for the listed entry
    /// and once for the store's change of the same key), and keeps it
    /// beyond the few whole listings.
    /// A listing cut down to nothing stays: it learns what the store moves
    /// into the folder later.
    pub(super) fn keep_only(&mut self, folder: &str, keep: &mut dyn FnMut(&str) -> bool) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.folder == folder) {
            slot.listed.retain(|e| keep(e.key()));
            slot.listed.shrink_to_fit();
            slot.changed.retain(|key, _| keep(key));
            slot.changed.shrink_to_fit();
            slot.complete = false;
        }
    }

    /// Remembers `entries` as part of what `folder` holds, where no listing
    /// of it is remembered: files named from the state, not seen. A wrong
    /// one is met as "not found", which lists the folder (see
    /// `MaildirStore::with_entry`).
    pub(super) fn assume(&mut self, folder: &str, entries: impl IntoIterator<Item = Entry>) {
        if self.slot(folder).is_some() {
            return;
        }
        let entries = entries.into_iter().collect();
        self.slots.push_front(Slot::new(folder, entries, false));
    }

    /// What the cache knows of `key` in `folder`.
    pub(super) fn lookup(&self, folder: &str, key: &str) -> Lookup {
        match self.slot(folder) {
            Some(slot) => slot.lookup(key),
            None => Lookup::Unknown,
        }
    }

    /// Drops the oldest whole listings beyond [`SLOTS`]; partial ones stay.
    fn evict(&mut self) {
        let mut whole = 0;
        self.slots.retain(|slot| {
            whole += usize::from(slot.complete);
            !slot.complete || whole <= SLOTS
        });
    }

    /// Records a change the store made: `key` is now `entry` (or gone).
    /// Nothing is recorded for a folder that is not remembered.
    pub(super) fn set(&mut self, folder: &str, key: &str, entry: Option<Entry>) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.folder == folder) {
            slot.changed.insert(key.to_string(), entry);
        }
    }

    /// Forgets `folder`.
    pub(super) fn forget(&mut self, folder: &str) {
        self.slots.retain(|s| s.folder != folder);
    }

    /// Forgets everything (folders were renamed).
    pub(super) fn clear(&mut self) {
        self.slots.clear();
    }

    fn slot(&self, folder: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.folder == folder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_maildir::{Folder, Subdir};

    /// A listing of a folder holding `keys` in `cur/`, unflagged.
    fn listing(keys: &[&str]) -> ferry_maildir::Listing {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = Folder::create(dir.path()).expect("folder");
        for key in keys {
            std::fs::write(dir.path().join("cur").join(format!("{key}:2,")), b"x").expect("file");
        }
        folder.scan().expect("scan")
    }

    fn entry(key: &str, info: &str) -> Entry {
        Entry::parse(Subdir::Cur, &format!("{key}:2,{info}")).expect("entry")
    }

    #[test]
    fn a_cut_listing_keeps_what_it_was_told_and_follows_the_store() {
        let mut cache = Cache::default();
        cache.fill("A", listing(&["a1", "a2"]).messages().to_vec());
        assert_eq!(cache.lookup("A", "a9"), Lookup::Absent);

        cache.keep_only("A", &mut |key| key == "a1");
        assert_eq!(cache.lookup("A", "a1"), Lookup::Found(entry("a1", "")));
        assert_eq!(cache.lookup("A", "a2"), Lookup::Unknown);
        assert_eq!(cache.lookup("A", "a9"), Lookup::Unknown);
        // A message the store moved in is found without a listing.
        cache.set("A", "a4", Some(entry("a4", "")));
        assert_eq!(cache.lookup("A", "a4"), Lookup::Found(entry("a4", "")));
        // A kept key follows the store's changes: renamed, then removed.
        cache.set("A", "a1", Some(entry("a1", "S")));
        assert_eq!(cache.lookup("A", "a1"), Lookup::Found(entry("a1", "S")));
        cache.set("A", "a1", None);
        assert_eq!(cache.lookup("A", "a1"), Lookup::Unknown);

        cache.keep_only("A", &mut |_| false);
        cache.set("A", "a5", Some(entry("a5", "")));
        assert_eq!(cache.lookup("A", "a5"), Lookup::Found(entry("a5", "")));
        assert_eq!(cache.lookup("A", "a4"), Lookup::Unknown);
    }

    #[test]
    fn the_stores_changes_hide_what_was_listed() {
        let mut cache = Cache::default();
        cache.fill("A", listing(&["a1", "a2", "a3"]).messages().to_vec());
        cache.set("A", "a1", None);
        assert_eq!(cache.lookup("A", "a1"), Lookup::Absent, "removed");
        cache.set("A", "a2", Some(entry("a2", "S")));
        cache.keep_only("A", &mut |key| key != "a3");
        assert_eq!(
            cache.lookup("A", "a1"),
            Lookup::Unknown,
            "not its listed file"
        );
        assert_eq!(cache.lookup("A", "a2"), Lookup::Found(entry("a2", "S")));
        assert_eq!(cache.lookup("A", "a3"), Lookup::Unknown);
    }
}
