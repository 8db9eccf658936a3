//! Listing folders in the background ([`Store::list_ahead`]): a thread per
//! folder asked for, whose listing the next quick snapshot of that folder
//! takes instead of listing it again.
//!
//! A listing taken ahead shows the folder as it was when it was asked for,
//! as one from the IMAP store's helpers does: the engine asks only for
//! folders it lists before it changes any of them.
//!
//! [`Store::list_ahead`]: ferry_core::store::Store::list_ahead

use std::collections::HashMap;
use std::thread::JoinHandle;

use ferry_maildir::{Folder, Listing, ScanOptions};

/// At most this many folders are listed in the background at once.
pub(super) const DEPTH: usize = 4;

type Scan = JoinHandle<ferry_maildir::Result<Listing>>;

/// The listings under way, by folder name.
#[derive(Default)]
pub(super) struct Ahead {
    scans: HashMap<String, Scan>,
}

impl Ahead {
    /// Starts listing `dir` (folder `name`) with `options`, unless it is
    /// under way already or [`DEPTH`] listings are. A thread that cannot
    /// be started is no error: the folder is then listed when asked for.
    pub(super) fn start(&mut self, name: &str, dir: Folder, options: ScanOptions) {
        if self.scans.contains_key(name) || self.scans.len() >= DEPTH {
            return;
        }
        let scan = std::thread::Builder::new()
            .name("ferry-maildir-list".into())
            .spawn(move || dir.scan_with(options));
        if let Ok(scan) = scan {
            self.scans.insert(name.to_string(), scan);
        }
    }

    /// The listing of `name` made in the background, waiting for it to
    /// finish; `None` when none was asked for (or its thread panicked).
    pub(super) fn take(&mut self, name: &str) -> Option<ferry_maildir::Result<Listing>> {
        self.scans.remove(name)?.join().ok()
    }

    /// Lets go of every listing under way; their threads finish alone.
    pub(super) fn clear(&mut self) {
        self.scans.clear();
    }
}
