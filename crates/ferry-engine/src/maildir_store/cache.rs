//! What the store last saw of a few folders: each key's file.
//!
//! A listing costs a `readdir` of the whole folder; the operations of a
//! batch look messages up by key. The cache keeps the last listing of the
//! few folders used most recently, kept up to date with the store's own
//! changes. It can be stale (another program renamed or removed a file):
//! every use of an entry that gives "not found" rescans, once per batch
//! (see `MaildirStore::with_entry`).

use std::collections::{HashMap, VecDeque};

use ferry_maildir::{Entry, Listing};

/// How many folders are remembered (each costs about 100 bytes a message).
const SLOTS: usize = 4;

/// The remembered listings, the most recently filled first.
#[derive(Debug, Default)]
pub(super) struct Cache {
    slots: VecDeque<Slot>,
}

#[derive(Debug)]
struct Slot {
    folder: String,
    entries: HashMap<String, Entry>,
}

impl Cache {
    /// Remembers `listing` as what `folder` holds now.
    pub(super) fn fill(&mut self, folder: &str, listing: &Listing) {
        self.forget(folder);
        let entries = listing
            .messages()
            .iter()
            .map(|e| (e.key().to_string(), e.clone()))
            .collect();
        self.slots.push_front(Slot {
            folder: folder.to_string(),
            entries,
        });
        self.slots.truncate(SLOTS);
    }

    /// Whether a listing of `folder` is remembered.
    pub(super) fn has(&self, folder: &str) -> bool {
        self.slot(folder).is_some()
    }

    /// The remembered entry of `key` in `folder`.
    pub(super) fn get(&self, folder: &str, key: &str) -> Option<Entry> {
        self.slot(folder)?.entries.get(key).cloned()
    }

    /// Records a change the store made: `key` is now `entry` (or gone).
    /// Nothing is recorded for a folder that is not remembered.
    pub(super) fn set(&mut self, folder: &str, key: &str, entry: Option<Entry>) {
        let Some(slot) = self.slots.iter_mut().find(|s| s.folder == folder) else {
            return;
        };
        match entry {
            Some(entry) => slot.entries.insert(key.to_string(), entry),
            None => slot.entries.remove(key),
        };
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
