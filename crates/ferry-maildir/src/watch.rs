//! The file watcher: hints that folders changed.
//!
//! A [`TreeWatcher`] watches (with `notify`, inotify on Linux) every
//! folder's `new/` and `cur/`, and the directories of the tree where
//! folders can appear or vanish (every directory in the fs layout, the root
//! in maildir++). Events are turned into the relative paths of the folders
//! they concern and collected for a short window (100 ms by default), then
//! handed out as a [`Hint`]. Directories created later are watched as their
//! creation is seen (their folder is reported dirty, so what happened in
//! them before the watch existed is not missed). Reading a message (open,
//! access) is no change; `tmp/` is not watched.
//!
//! A hint never decides anything: it says where to look. The engine rescans
//! the folder and diffs against its state, which is the only truth. When
//! events may have been lost (the kernel queue overflowed, notify asks for
//! a rescan, or notify failed), the hint is [`Hint::Everything`].
//! Directories reached through symbolic links are not watched.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use notify::event::{CreateKind, ModifyKind, RemoveKind};
use notify::{Config, Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::tree::Tree;

/// What changed, as far as the watcher can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Nothing within the timeout.
    Nothing,
    /// These folders (paths relative to the root; empty for the maildir++
    /// INBOX) may have changed, or appeared or vanished.
    Dirty(BTreeSet<PathBuf>),
    /// Events may have been lost: treat every folder as changed.
    Everything,
}

enum Msg {
    Event(notify::Result<Event>),
    Overflow,
}

/// Watches a tree (see the module documentation).
pub struct TreeWatcher {
    root: PathBuf,
    layout: Layout,
    watcher: Mutex<RecommendedWatcher>,
    rx: Mutex<Receiver<Msg>>,
    tx: Sender<Msg>,
    debounce: Duration,
}

impl std::fmt::Debug for TreeWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeWatcher")
            .field("root", &self.root)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl TreeWatcher {
    /// Starts watching `tree`.
    pub fn new(tree: &Tree) -> Result<TreeWatcher> {
        let (tx, rx) = channel();
        let events = tx.clone();
        let handler = move |event| {
            let _ = events.send(Msg::Event(event));
        };
        let config = Config::default().with_follow_symlinks(false);
        let watcher = RecommendedWatcher::new(handler, config).map_err(|source| Error::Watch {
            path: tree.root().to_path_buf(),
            source,
        })?;
        let this = TreeWatcher {
            root: tree.root().to_path_buf(),
            layout: tree.layout(),
            watcher: Mutex::new(watcher),
            rx: Mutex::new(rx),
            tx,
            debounce: Duration::from_millis(100),
        };
        let mut acc = Acc::default();
        this.watch_tree(&this.root, &mut acc, false);
        match acc.error {
            Some((path, source)) => Err(Error::Watch { path, source }),
            None => Ok(this),
        }
    }

    /// The same watcher with another collection window.
    pub fn with_debounce(mut self, window: Duration) -> Self {
        self.debounce = window;
        self
    }

    /// Makes the next [`TreeWatcher::wait`] report [`Hint::Everything`], as
    /// a kernel queue overflow does. For tests: inotify cannot be made to
    /// overflow reliably.
    pub fn inject_overflow(&self) {
        let _ = self.tx.send(Msg::Overflow);
    }

    /// Waits up to `timeout` for a change, then collects further events for
    /// the debounce window and reports them together.
    pub fn wait(&self, timeout: Duration) -> Hint {
        let rx = match self.rx.lock() {
            Ok(rx) => rx,
            Err(poisoned) => poisoned.into_inner(),
        };
        let deadline = Instant::now() + timeout;
        let mut acc = Acc::default();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(msg) => self.take(msg, &mut acc),
                Err(RecvTimeoutError::Timeout) => return Hint::Nothing,
                Err(RecvTimeoutError::Disconnected) => return Hint::Everything,
            }
            if !acc.is_empty() {
                break;
            }
        }
        let window = Instant::now() + self.debounce;
        loop {
            let left = window.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(msg) => self.take(msg, &mut acc),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => acc.everything = true,
            }
            if left.is_zero() {
                break;
            }
        }
        acc.into_hint()
    }

    fn take(&self, msg: Msg, acc: &mut Acc) {
        match msg {
            Msg::Overflow => acc.everything = true,
            Msg::Event(Err(e)) => {
                tracing::warn!("file watcher: {e}; rescanning everything");
                acc.everything = true;
            }
            Msg::Event(Ok(event)) if event.need_rescan() => acc.everything = true,
            Msg::Event(Ok(event)) => self.classify(&event, acc),
        }
    }

    /// Turns one event into dirty folders (and new watches).
    fn classify(&self, event: &Event, acc: &mut Acc) {
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        for path in &event.paths {
            let Ok(rel) = path.strip_prefix(&self.root) else {
                continue;
            };
            match self.place(rel) {
                Place::Message(folder) => {
                    acc.dirty.insert(folder);
                }
                Place::Subdir(folder) => {
                    acc.dirty.insert(folder);
                    if path.is_dir() {
                        self.watch_dir(path, acc);
                    }
                }
                Place::TreeEntry if is_dir_change(&event.kind, path) => {
                    acc.dirty.insert(rel.to_path_buf());
                    if path.is_dir() {
                        self.watch_tree(path, acc, true);
                    }
                }
                Place::TreeEntry | Place::Ignored => {}
            }
        }
    }

    /// Where a path lies in the tree.
    fn place(&self, rel: &Path) -> Place {
        let parts: Vec<&std::ffi::OsStr> = rel.iter().collect();
        let is_sub = |s: &std::ffi::OsStr| s == "cur" || s == "new";
        match parts.as_slice() {
            [] => Place::Ignored,
            [folder @ .., sub, _] if is_sub(sub) => Place::Message(folder.iter().collect()),
            [folder @ .., sub] if is_sub(sub) => Place::Subdir(folder.iter().collect()),
            [.., last] if *last == "tmp" => Place::Ignored,
            [.., last] if self.layout == Layout::Fs && last.to_string_lossy().starts_with('.') => {
                Place::Ignored
            }
            [_] => Place::TreeEntry,
            [..] if self.layout == Layout::Fs => Place::TreeEntry,
            [..] => Place::Ignored,
        }
    }

    /// Watches `dir` and the directories under it where folders, `new/`
    /// or `cur/` can be, per the layout. With `mark`, every directory
    /// walked is reported dirty (it is new: what happened in it before the
    /// watch existed was not seen).
    fn watch_tree(&self, dir: &Path, acc: &mut Acc, mark: bool) {
        self.watch_dir(dir, acc);
        if mark {
            if let Ok(rel) = dir.strip_prefix(&self.root) {
                acc.dirty.insert(rel.to_path_buf());
            }
        }
        let Ok(items) = fs::read_dir(dir) else {
            return;
        };
        let top = dir == self.root;
        for item in items.flatten() {
            if !item.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = item.path();
            let name = item.file_name();
            match (self.layout, name.to_string_lossy().as_ref()) {
                (_, "tmp") => {}
                (_, "cur" | "new") => self.watch_dir(&path, acc),
                (Layout::Fs, n) if !n.starts_with('.') => self.watch_tree(&path, acc, mark),
                (Layout::MaildirPlusPlus, n) if top && n.starts_with('.') => {
                    self.watch_tree(&path, acc, mark)
                }
                _ => {}
            }
        }
    }

    /// Watches one directory; a failure (other than the directory having
    /// vanished) marks everything dirty.
    fn watch_dir(&self, dir: &Path, acc: &mut Acc) {
        let mut watcher = match self.watcher.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        match watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {}
            Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {}
            Err(e) => {
                tracing::warn!(dir = %dir.display(), "cannot watch: {e}; rescanning everything");
                acc.everything = true;
                acc.error.get_or_insert((dir.to_path_buf(), e));
            }
        }
    }
}

/// Whether an event directly in a tree directory is a folder appearing,
/// vanishing or being renamed (files there, like Dovecot's indexes, are not).
fn is_dir_change(kind: &EventKind, path: &Path) -> bool {
    match kind {
        EventKind::Create(CreateKind::Folder) | EventKind::Remove(RemoveKind::Folder) => true,
        EventKind::Create(CreateKind::Any | CreateKind::Other) => path.is_dir(),
        EventKind::Remove(RemoveKind::Any | RemoveKind::Other) => !path.exists(),
        EventKind::Modify(ModifyKind::Name(_)) => path.is_dir() || !path.exists(),
        _ => false,
    }
}

enum Place {
    /// A message file in `FOLDER/cur` or `FOLDER/new`.
    Message(PathBuf),
    /// `FOLDER/cur` or `FOLDER/new` itself.
    Subdir(PathBuf),
    /// An entry of a directory where folders live.
    TreeEntry,
    /// Nothing ferry cares about.
    Ignored,
}

#[derive(Default)]
struct Acc {
    dirty: BTreeSet<PathBuf>,
    everything: bool,
    /// The first failure to add a watch.
    error: Option<(PathBuf, notify::Error)>,
}

impl Acc {
    fn is_empty(&self) -> bool {
        self.dirty.is_empty() && !self.everything
    }

    fn into_hint(self) -> Hint {
        if self.everything {
            Hint::Everything
        } else if self.dirty.is_empty() {
            Hint::Nothing
        } else {
            Hint::Dirty(self.dirty)
        }
    }
}
