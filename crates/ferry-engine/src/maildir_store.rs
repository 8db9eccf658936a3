//! The near side of a sync: [`Store`] over a Maildir tree (ferry-maildir).
//!
//! [`MaildirStore`] maps the engine's calls onto files:
//!
//! - **Folders.** Local names use `/` between components and `INBOX` for
//!   the inbox (design.md, "Local layout"); the tree's [`Layout`] places
//!   them (`fs`: `A/B`; maildir++: `.A.B`, INBOX the root). A folder's
//!   identity is its path, so [`FolderIdentity`] is empty. A folder whose
//!   name has a component containing `/` (on disk `%2F`) cannot be named
//!   in these terms and is left out of [`Store::list_folders`], with a
//!   warning. INBOX can be neither deleted nor renamed.
//! - **Keys** are [`MessageKey::Name`]: the unique part of the file name,
//!   which survives flag renames. A [`MessageKey::Uid`] gets
//!   [`Error::NotAName`].
//! - **Snapshots** read directories only (no file is opened): flags come
//!   from the `:2,` info; the size is known only when the name carries
//!   Dovecot's `,W=<size>` (the size with CRLF line endings, the one ferry
//!   compares; `,S=` is the stored LF size and is not used). Message-ID and
//!   fingerprint are not known. The markers carry the `new/` and `cur/`
//!   stamps only when the listing proved them stable; `messages` stays
//!   `None` in both listing and snapshot, so that the two compare alike.
//! - **Reading** ([`Store::read_bodies`]) opens each file, counts its CRLF
//!   length and finds its Message-ID in one pass, then pushes its CRLF form
//!   in chunks of 64 KiB at most; the internal date is the file's mtime.
//! - **Writing** ([`Store::begin_writes`]) delivers push-wise into `tmp/`,
//!   converting CRLF to LF, then renames into `new/` (no flags) or `cur/`
//!   (flags), setting the mtime to the internal date. The key is the
//!   planned one when given (journaled before the delivery), else a fresh
//!   one ([`Store::fresh_key`] gives one to plan with). Directory
//!   fsyncs wait for [`Store::finish_writes`]: one per directory a batch.
//!   A planned key is first looked for in the folder (a replay finds its
//!   message there), unless this store made it for the batch and no
//!   delivery used it yet: no file can have it then.
//! - **Changes** (flags, removal, moves) are renames and unlinks; their
//!   directories are fsynced once per batch before the call returns.
//!
//! Every operation can be repeated after a crash to the same end: a
//! delivery whose planned key is in the folder already reports that key
//! (and fsyncs its directory, in case the earlier run died before it did);
//! removing a message that is gone succeeds; a move whose message is in
//! the target already succeeds (and a copy left in both folders by a move
//! across file systems that was cut short loses its source); creating a
//! folder that exists, deleting one that is gone, and renaming one whose
//! new name exists while the old one is gone all succeed.
//!
//! Messages are found through the last listing of the folder, kept for a
//! few folders, or, in a folder the engine proved unchanged, through the
//! file names the state implies ([`Store::known_unchanged`]); when a file
//! is not where that listing said (a mail reader renamed it to change a
//! flag), the folder is listed again, once per batch, and the operation
//! retried.

mod cache;
mod error;
mod read;
mod write;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::time::SystemTime;

use ferry_core::store::{
    Batch, BodyTarget, Capabilities, FlagChange, FolderIdentity, FolderStatus, Keyed, Markers,
    Snapshot, Store,
};
use ferry_core::{Flag, MessageKey, MessageMeta};
use ferry_maildir::{
    DeliveryQueue, DirtyDirs, Entry, Folder, FolderName, Layout, Listing, MaildirName, ScanOptions,
    StepHook, Subdir, Tree, unique_key,
};

use cache::{Cache, Lookup};
pub use error::{Error, classify};
use read::Failure;
use write::Writer;

/// The size of the chunks pushed into a [`BodyTarget`].
pub const CHUNK: usize = 64 * 1024;

/// A Maildir tree as a [`Store`].
pub struct MaildirStore {
    tree: Tree,
    hook: Option<StepHook>,
    cache: Cache,
    pending: Pending,
    /// The fingerprints of the last batch, until taken.
    fingerprints: HashMap<MessageKey, ferry_core::Fingerprint>,
    /// Delivery workers, started with the first message stored.
    queue: Option<DeliveryQueue>,
    /// How many folder listings were made.
    listings: usize,
    /// Keys [`Store::fresh_key`] made that no delivery has used yet: no
    /// file can have one, so a delivery planned with one is not looked for
    /// first (which would list a folder the engine did not list).
    unused_keys: HashSet<Box<str>>,
}

impl std::fmt::Debug for MaildirStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaildirStore")
            .field("tree", &self.tree)
            .field("pending", &self.pending.results.len())
            .finish_non_exhaustive()
    }
}

/// What the writes since [`Store::begin_writes`] left to finish.
#[derive(Default)]
struct Pending {
    results: Vec<Keyed<Option<MessageKey>, Error>>,
    /// The fingerprints of the messages delivered, by source key.
    fingerprints: HashMap<MessageKey, ferry_core::Fingerprint>,
    dirty: DirtyDirs,
    folders: BTreeSet<String>,
}

/// One folder during one call: its name, its handle, and whether it was
/// listed afresh during the call (it is listed again at most once a call).
struct At {
    name: String,
    dir: Folder,
    fresh: bool,
}

impl At {
    /// The Maildir key in `key`.
    fn name_of<'k>(&self, key: &'k MessageKey) -> Result<&'k str, Error> {
        match key {
            MessageKey::Name(name) => Ok(name),
            other => Err(Error::NotAName {
                folder: self.name.clone(),
                key: other.clone(),
            }),
        }
    }

    fn no_message(&self, key: &str) -> Error {
        Error::NoMessage {
            folder: self.name.clone(),
            key: key.to_string(),
        }
    }

    fn target_error(&self, key: &MessageKey, source: std::io::Error) -> Error {
        Error::Target {
            folder: self.name.clone(),
            key: key.clone(),
            source,
        }
    }
}

impl MaildirStore {
    /// Opens the store on an existing Maildir root. A missing root is an
    /// error: whether to make it is the engine's decision ([`Self::create`]).
    pub fn open(root: impl AsRef<Path>, layout: Layout) -> Result<Self, Error> {
        Tree::open(root, layout)
            .map(Self::on)
            .map_err(|e| Error::Root(Box::new(e)))
    }

    /// Makes the Maildir root (and its parents) if missing, then opens it.
    pub fn create(root: impl AsRef<Path>, layout: Layout) -> Result<Self, Error> {
        Tree::create(root, layout)
            .map(Self::on)
            .map_err(|e| Error::Root(Box::new(e)))
    }

    fn on(tree: Tree) -> Self {
        MaildirStore {
            tree,
            hook: None,
            cache: Cache::default(),
            pending: Pending::default(),
            fingerprints: HashMap::new(),
            queue: None,
            listings: 0,
            unused_keys: HashSet::new(),
        }
    }

    /// How many times this store listed a folder (snapshots, and listing
    /// again to find a message): what a run's cost grows with.
    pub fn listings(&self) -> usize {
        self.listings
    }

    /// The same store, calling `hook` before each step of every message
    /// operation (for crash and fault tests; see [`ferry_maildir::step`]).
    pub fn with_step_hook(mut self, hook: StepHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The Maildir tree.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// A fresh key, for [`Incoming::planned_key`](ferry_core::store::Incoming::planned_key):
    /// chosen and journaled before a delivery, so that the delivered file
    /// can be found by name after a crash.
    pub fn new_key() -> MessageKey {
        MessageKey::Name(unique_key().into())
    }

    /// The ferry-maildir name of a local folder name.
    fn folder_name(&self, folder: &str) -> Result<FolderName, Error> {
        FolderName::from_server(folder, Some('/'), "").map_err(|source| Error::Name {
            name: folder.to_string(),
            source,
        })
    }

    /// The existing folder `folder`.
    fn at(&self, folder: &str) -> Result<At, Error> {
        let name = self.folder_name(folder)?;
        let dir = self.tree.folder(&name).map_err(|e| match e {
            ferry_maildir::Error::NotAFolder { path } => Error::NoFolder {
                name: folder.to_string(),
                path,
            },
            other => self.fail(folder, None, other),
        })?;
        let dir = match &self.hook {
            Some(hook) => dir.with_step_hook(hook.clone()),
            None => dir,
        };
        Ok(At {
            name: folder.to_string(),
            dir,
            fresh: false,
        })
    }

    /// Wraps a file error with its folder, message and class.
    /// The delivery workers, started on first use.
    fn delivery_queue(&mut self) -> Result<&mut DeliveryQueue, Error> {
        let queue = match self.queue.take() {
            Some(queue) => queue,
            None => DeliveryQueue::new(write::DELIVERY_WORKERS).map_err(|e| {
                Error::Root(Box::new(ferry_maildir::Error::Io {
                    op: "starting delivery threads for",
                    path: self.tree.root().to_path_buf(),
                    source: e,
                }))
            })?,
        };
        Ok(self.queue.insert(queue))
    }

    fn fail(&self, folder: &str, key: Option<&str>, source: ferry_maildir::Error) -> Error {
        Error::Maildir {
            folder: folder.to_string(),
            key: key.map(str::to_string),
            class: classify(&source, self.tree.root(), key.is_some()),
            source: Box::new(source),
        }
    }

    /// A snapshot of `folder` listed with `options`.
    fn snapshot_with(&mut self, folder: &str, options: ScanOptions) -> Result<Snapshot, Error> {
        let at = self.at(folder)?;
        self.listings += 1;
        let listing = at
            .dir
            .scan_with(options)
            .map_err(|e| self.fail(folder, None, e))?;
        report(folder, &listing);
        let markers = Markers {
            stamps: listing.proof().map(|t| (t.new_ns, t.cur_ns)),
            ..Markers::default()
        };
        let messages = listing.messages().iter().map(meta).collect();
        let unsettled = listing.proof().is_none();
        self.cache.fill(folder, listing.into_messages());
        Ok(Snapshot {
            identity: FolderIdentity::default(),
            markers,
            messages,
            unsettled,
        })
    }

    /// Lists `at` again (one quick pass) and remembers the listing.
    fn rescan(&mut self, at: &mut At) -> Result<(), Error> {
        let quick = ScanOptions {
            max_attempts: 1,
            wait_to_settle: false,
        };
        self.listings += 1;
        let listing = at
            .dir
            .scan_with(quick)
            .map_err(|e| self.fail(&at.name, None, e))?;
        report(&at.name, &listing);
        self.cache.fill(&at.name, listing.into_messages());
        at.fresh = true;
        Ok(())
    }

    /// The entry of `key` in the remembered listing of `at`, listing the
    /// folder first if none is remembered. A miss is trusted: the listing
    /// was made during this run and follows the store's own changes.
    fn find_cached(&mut self, at: &mut At, key: &str) -> Result<Option<Entry>, Error> {
        match self.cache.lookup(&at.name, key) {
            Lookup::Found(entry) => return Ok(Some(entry)),
            Lookup::Absent => return Ok(None),
            Lookup::Unknown => self.rescan(at)?,
        }
        Ok(self.cached(&at.name, key))
    }

    /// The remembered entry of `key` in `folder`, if any.
    fn cached(&self, folder: &str, key: &str) -> Option<Entry> {
        match self.cache.lookup(folder, key) {
            Lookup::Found(entry) => Some(entry),
            Lookup::Absent | Lookup::Unknown => None,
        }
    }

    /// The entry of `key` in `at`, listing the folder again on a miss
    /// unless it was listed afresh during this call.
    fn find(&mut self, at: &mut At, key: &str) -> Result<Option<Entry>, Error> {
        if let Some(entry) = self.find_cached(at, key)? {
            return Ok(Some(entry));
        }
        if at.fresh {
            return Ok(None);
        }
        self.rescan(at)?;
        Ok(self.cached(&at.name, key))
    }

    /// Runs `op` on the file of `key`; when the file is not where the
    /// listing said, lists again (once a call) and retries. `None`: the
    /// key is not in the folder.
    fn with_entry<T>(
        &mut self,
        at: &mut At,
        key: &str,
        mut op: impl FnMut(&Folder, &Entry) -> ferry_maildir::Result<T>,
    ) -> Result<Option<T>, Error> {
        loop {
            let Some(entry) = self.find(at, key)? else {
                return Ok(None);
            };
            match op(&at.dir, &entry) {
                Ok(value) => return Ok(Some(value)),
                Err(e) if e.is_rescan() && !at.fresh => self.rescan(at)?,
                Err(e) => return Err(self.fail(&at.name, Some(key), e)),
            }
        }
    }

    /// fsyncs the directories a call changed.
    fn sync(&self, folder: &str, dirty: DirtyDirs) -> Result<(), Error> {
        dirty.sync().map_err(|e| self.fail(folder, None, e))
    }

    /// Changes the flags of one message.
    fn set_one(
        &mut self,
        at: &mut At,
        change: &FlagChange,
        dirty: &mut DirtyDirs,
    ) -> Result<(), Error> {
        let key = at.name_of(&change.key)?;
        let renamed = self.with_entry(at, key, |dir, entry| {
            let mut flags = entry.flags();
            change.add.iter().filter(|f| has_letter(f)).for_each(|f| {
                flags.insert(f.clone());
            });
            change.remove.iter().for_each(|f| {
                flags.remove(f);
            });
            if flags == entry.flags() {
                still_there(dir, entry)?;
            }
            dir.set_flags(entry, &flags).map(|done| done.defer(dirty))
        })?;
        let entry = renamed.ok_or_else(|| at.no_message(key))?;
        self.cache.set(&at.name, key, Some(entry));
        Ok(())
    }

    /// Removes one message; one that is gone already is removed.
    fn remove_one(
        &mut self,
        at: &mut At,
        key: &MessageKey,
        dirty: &mut DirtyDirs,
    ) -> Result<(), Error> {
        let key = at.name_of(key)?;
        self.with_entry(at, key, |dir, entry| {
            dir.remove(entry).map(|done| done.defer(dirty))
        })?;
        self.cache.set(&at.name, key, None);
        Ok(())
    }

    /// Moves one message from `from` to `to`, keeping its name.
    fn move_one(
        &mut self,
        from: &mut At,
        to: &mut At,
        key: &MessageKey,
        dirty: &mut DirtyDirs,
    ) -> Result<Option<MessageKey>, Error> {
        let name = from.name_of(key)?;
        let target = &to.dir;
        let moved = self.with_entry(from, name, |dir, entry| {
            move_or_complete(dir, entry, target, dirty)
        })?;
        let entry = match moved {
            Some(entry) => entry,
            None => {
                // Not in `from`: moved already (a replay), or missing.
                let there = self.find(to, name)?;
                let entry = there.ok_or_else(|| from.no_message(name))?;
                to.dir.adopt(&entry).defer(dirty)
            }
        };
        self.cache.set(&from.name, name, None);
        self.cache.set(&to.name, name, Some(entry));
        Ok(Some(key.clone()))
    }
}

/// `from.move_to(entry, to)`, its directories left to `dirty`. When the
/// name is taken in `to` already (a copy left by an earlier move across
/// file systems, cut short before it removed its source), the source is
/// removed to complete the move.
fn move_or_complete(
    from: &Folder,
    entry: &Entry,
    to: &Folder,
    dirty: &mut DirtyDirs,
) -> ferry_maildir::Result<Entry> {
    match from.move_to(entry, to) {
        Ok(done) => Ok(done.defer(dirty)),
        Err(ferry_maildir::Error::Exists { .. }) => {
            from.remove(entry)?.defer(dirty);
            Ok(to.adopt(entry).defer(dirty))
        }
        Err(e) => Err(e),
    }
}

/// Fails with "not found" when the file of `entry` is gone: a change that
/// renames nothing would not notice.
fn still_there(dir: &Folder, entry: &Entry) -> ferry_maildir::Result<()> {
    let path = dir.entry_path(entry);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ferry_maildir::Error::NotFound {
            op: "changing the flags of",
            path,
        }),
        Err(source) => Err(ferry_maildir::Error::Io {
            op: "changing the flags of",
            path,
            source,
        }),
    }
}

/// Whether a flag can be written in a file name (keywords cannot; they
/// live in the engine's state).
fn has_letter(flag: &Flag) -> bool {
    flag.maildir_letter().is_some()
}

/// Logs what a listing found besides messages.
fn report(folder: &str, listing: &Listing) {
    for dup in listing.duplicates() {
        tracing::warn!(
            folder, key = dup.key(), file = %dup.rel_path().display(),
            "a second file with the same key; the listing uses the other"
        );
    }
    for skipped in listing.skipped() {
        tracing::debug!(folder, name = ?skipped.name, "not a message: {}", skipped.reason);
    }
}

/// The local name of a folder, unless a component holds `/`.
fn local_name(name: &FolderName) -> Option<String> {
    if name.parts().iter().any(|p| p.contains('/')) {
        tracing::warn!(
            folder = ?name.parts(),
            "left out: a component of its name contains '/', which local names cannot express"
        );
        return None;
    }
    Some(name.to_string())
}

/// The markers of a folder now: its stamps, when they are settled.
fn markers(folder: &Folder, now: SystemTime) -> ferry_maildir::Result<Markers> {
    let stamps = folder.stamps()?;
    let times = stamps.settled_at(now).then(|| stamps.times());
    Ok(Markers {
        stamps: times.map(|t| (t.new_ns, t.cur_ns)),
        ..Markers::default()
    })
}

/// The size with CRLF line endings that Dovecot writes into a key as
/// `,W=<size>`.
fn crlf_size_in_key(key: &str) -> Option<u64> {
    let size = key.split(',').skip(1).find_map(|p| p.strip_prefix("W="))?;
    let digits = !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| size.parse().ok()).flatten()
}

/// The file of message `key` in `dir` with `flags`, as ferry or a mail
/// reader names it (see [`Store::known_unchanged`]).
fn file_of(dir: &Folder, key: &str, flags: &ferry_core::Flags) -> Entry {
    // Every system flag has a letter: no letters means no system flag.
    if flags.without_keywords().is_empty() {
        let delivered = Entry::new(Subdir::New, MaildirName::bare(key));
        if std::fs::symlink_metadata(dir.entry_path(&delivered)).is_ok() {
            return delivered;
        }
    }
    Entry::new(Subdir::Cur, MaildirName::with_flags(key, flags, None))
}

/// What a snapshot says of one file.
fn meta(entry: &Entry) -> MessageMeta {
    MessageMeta {
        size: crlf_size_in_key(entry.key()),
        ..MessageMeta::new(MessageKey::Name(entry.key().into()), entry.flags())
    }
}

impl Store for MaildirStore {
    type Error = Error;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            atomic_move: true,
            selective_expunge: true,
            change_tracking: true,
            reports_new_keys: true,
            keywords: false,
            fingerprints_writes: true,
            lists_changes: false,
        }
    }

    fn list_folders(&mut self) -> Result<Vec<FolderStatus>, Error> {
        let listing = self.tree.list().map_err(|e| self.fail("", None, e))?;
        let now = SystemTime::now();
        let mut statuses = Vec::with_capacity(listing.folders.len());
        for (name, folder) in &listing.folders {
            let Some(local) = local_name(name) else {
                continue;
            };
            match markers(folder, now) {
                Ok(markers) => statuses.push(FolderStatus {
                    name: local,
                    identity: FolderIdentity::default(),
                    markers,
                    selectable: true,
                }),
                Err(e) => tracing::warn!(folder = %local, "left out: {e}"),
            }
        }
        Ok(statuses)
    }

    fn create_folder(&mut self, name: &str) -> Result<(), Error> {
        let folder = self.folder_name(name)?;
        self.tree
            .create_folder(&folder)
            .map_err(|e| self.fail(name, None, e))?;
        Ok(())
    }

    fn delete_folder(&mut self, name: &str) -> Result<(), Error> {
        let folder = self.folder_name(name)?;
        if folder.is_inbox() {
            let name = name.to_string();
            return Err(Error::Inbox {
                name,
                op: "deleting",
            });
        }
        self.cache.forget(name);
        self.tree
            .remove_folder(&folder)
            .map_err(|e| self.fail(name, None, e))
    }

    fn rename_folder(&mut self, from: &str, to: &str) -> Result<(), Error> {
        let (old, new) = (self.folder_name(from)?, self.folder_name(to)?);
        if let Some(inbox) = [(from, &old), (to, &new)]
            .iter()
            .find(|(_, n)| n.is_inbox())
        {
            let name = inbox.0.to_string();
            return Err(Error::Inbox {
                name,
                op: "renaming",
            });
        }
        self.cache.clear();
        match self.tree.rename_folder(&old, &new) {
            Ok(_) => Ok(()),
            // Renamed already (a replay, or moved with its parent).
            Err(ferry_maildir::Error::NotAFolder { .. }) if self.tree.folder(&new).is_ok() => {
                Ok(())
            }
            Err(ferry_maildir::Error::NotAFolder { path }) => Err(Error::NoFolder {
                name: from.to_string(),
                path,
            }),
            Err(e) => Err(self.fail(from, None, e)),
        }
    }

    /// Never waits for a just-changed directory to settle; such a listing
    /// is [`Snapshot::unsettled`].
    fn snapshot(&mut self, folder: &str) -> Result<Snapshot, Error> {
        let options = ScanOptions {
            wait_to_settle: false,
            ..ScanOptions::default()
        };
        self.snapshot_with(folder, options)
    }

    /// Waits (a clock tick, at most a few seconds on a filesystem with
    /// whole-second times) until the directories have settled.
    fn settled_snapshot(&mut self, folder: &str) -> Result<Snapshot, Error> {
        self.snapshot_with(folder, ScanOptions::default())
    }

    /// Removes the `tmp/` file an interrupted delivery of `key` left.
    fn discard_unfinished(&mut self, folder: &str, key: &MessageKey) -> Result<(), Error> {
        let at = self.at(folder)?;
        let name = at.name_of(key)?;
        match at.dir.discard_unfinished(name) {
            Ok(found) => {
                if found {
                    tracing::debug!("removed the unfinished delivery tmp/{name} in {folder}");
                }
                Ok(())
            }
            Err(e) => Err(self.fail(folder, Some(name), e)),
        }
    }

    /// Cuts the remembered listing of `folder` down to the messages in
    /// `keep` (what the plan touches, then what moves later in the run use
    /// in it), and keeps that for what follows.
    fn keep_only(&mut self, folder: &str, keep: &HashSet<MessageKey>) {
        let names: HashSet<&str> = (keep.iter())
            .filter_map(|key| match key {
                MessageKey::Name(name) => Some(&**name),
                MessageKey::Uid(_) => None,
            })
            .collect();
        self.cache
            .keep_only(folder, &mut |name| names.contains(name));
    }

    /// Remembers, for each message of `snapshot`, the file the state
    /// implies: `cur/KEY:2,FLAGS`, or for an unflagged message `new/KEY`
    /// where that is there (as delivered), else `cur/KEY:2,` (as a mail
    /// reader leaves it once seen). A file renamed since is found by
    /// listing the folder when it is not there.
    fn known_unchanged(&mut self, folder: &str, snapshot: &Snapshot) {
        let Ok(at) = self.at(folder) else {
            return;
        };
        let entries = snapshot.messages.iter().filter_map(|m| match &m.key {
            MessageKey::Name(key) => Some(file_of(&at.dir, key, &m.flags)),
            MessageKey::Uid(_) => None,
        });
        self.cache.assume(folder, entries);
    }

    /// Always a key, as [`MaildirStore::new_key`] makes; the store
    /// remembers it until the end of the batch, so that delivering the
    /// first message planned with it needs no lookup.
    fn fresh_key(&mut self) -> Option<MessageKey> {
        let key = unique_key().into_boxed_str();
        self.unused_keys.insert(key.clone());
        Some(MessageKey::Name(key))
    }

    fn read_bodies(
        &mut self,
        folder: &str,
        keys: &[MessageKey],
        target: &mut dyn BodyTarget,
    ) -> Batch<Keyed<(), Error>, Error> {
        let mut at = self.at(folder)?;
        let mut buf = vec![0u8; CHUNK];
        let mut results = Vec::with_capacity(keys.len());
        for key in keys {
            match self.read_one(&mut at, key, target, &mut buf) {
                Ok(()) => results.push((key.clone(), Ok(()))),
                Err(Failure::Item(e)) => results.push((key.clone(), Err(e))),
                Err(Failure::Batch(e)) => return Err(e),
            }
        }
        Ok(results)
    }

    fn describe(&mut self, folder: &str, keys: &[MessageKey]) -> Result<Vec<MessageMeta>, Error> {
        let mut seen = Describe::default();
        self.read_bodies(folder, keys, &mut seen)?;
        Ok(seen.described)
    }

    fn begin_writes(&mut self, folder: &str) -> Result<Box<dyn BodyTarget + '_>, Error> {
        let at = self.at(folder)?;
        Ok(Box::new(Writer::new(self, at)))
    }

    fn finish_writes(&mut self) -> Batch<Keyed<Option<MessageKey>, Error>, Error> {
        let pending = std::mem::take(&mut self.pending);
        // A key made for this batch and not used is not used later.
        self.unused_keys.clear();
        let folders: Vec<String> = pending.folders.into_iter().collect();
        self.sync(&folders.join(", "), pending.dirty)?;
        self.fingerprints = pending.fingerprints;
        Ok(pending.results)
    }

    fn take_fingerprints(&mut self) -> HashMap<MessageKey, ferry_core::Fingerprint> {
        std::mem::take(&mut self.fingerprints)
    }

    fn set_flags(
        &mut self,
        folder: &str,
        changes: &[FlagChange],
    ) -> Batch<Result<(), Error>, Error> {
        let mut at = self.at(folder)?;
        let mut dirty = DirtyDirs::new();
        let results = changes
            .iter()
            .map(|change| self.set_one(&mut at, change, &mut dirty))
            .collect();
        self.sync(folder, dirty)?;
        Ok(results)
    }

    fn remove(&mut self, folder: &str, keys: &[MessageKey]) -> Batch<Result<(), Error>, Error> {
        let mut at = self.at(folder)?;
        let mut dirty = DirtyDirs::new();
        let results = keys
            .iter()
            .map(|key| self.remove_one(&mut at, key, &mut dirty))
            .collect();
        self.sync(folder, dirty)?;
        Ok(results)
    }

    fn move_messages(
        &mut self,
        from: &str,
        keys: &[MessageKey],
        to: &str,
    ) -> Batch<Result<Option<MessageKey>, Error>, Error> {
        let (mut source, mut target) = (self.at(from)?, self.at(to)?);
        let mut dirty = DirtyDirs::new();
        let results = keys
            .iter()
            .map(|key| self.move_one(&mut source, &mut target, key, &mut dirty))
            .collect();
        self.sync(from, dirty)?;
        Ok(results)
    }
}

/// A target that keeps what each message's [`Incoming`](ferry_core::store::Incoming) says and hashes
/// the bytes: how [`Store::describe`] learns Message-IDs, sizes and
/// fingerprints (the file is read whole anyway, for its size; the
/// fingerprint tells an edited message from the one it replaced when the
/// Message-ID and size are the same).
#[derive(Default)]
struct Describe {
    described: Vec<MessageMeta>,
    hashing: Option<ferry_maildir::Fingerprinter>,
}

impl BodyTarget for Describe {
    fn begin(&mut self, message: &ferry_core::store::Incoming) -> std::io::Result<()> {
        let mut meta = MessageMeta::new(message.source.clone(), message.flags.clone());
        meta.size = Some(message.size);
        meta.message_id = message.message_id.as_deref().map(Box::from);
        self.described.push(meta);
        self.hashing = Some(ferry_maildir::Fingerprinter::new());
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        if let Some(hashing) = &mut self.hashing {
            hashing.update(data);
        }
        Ok(())
    }

    fn end(&mut self) -> std::io::Result<()> {
        let finished = self.hashing.take().map(|h| h.finish().0);
        if let Some(meta) = self.described.last_mut() {
            meta.fingerprint = finished.map(Box::new);
        }
        Ok(())
    }
}
