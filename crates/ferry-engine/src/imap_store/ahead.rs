//! Listing folders ahead on more connections (the account's
//! `connections`): while the engine works on one folder, helper sessions
//! already list the next ones, so that a run over many changed folders
//! pays the server's round trips and SELECT work side by side instead of
//! one folder after another.
//!
//! The engine asks for a folder ahead ([`Ahead::request`]) and later for
//! its snapshot ([`Ahead::take`]). A request no helper has started yet is
//! given back, and the main session lists the folder itself; one a helper
//! is working on is waited for. Helpers connect lazily and one after
//! another (the next one opens once the last one is in, while more is
//! queued than idle helpers can take), up to the limit; once one cannot
//! connect (the server allows fewer connections:
//! Courier 4 per IP, Dovecot 10 per user and IP) no more are tried. A
//! helper that cannot connect or whose session breaks only means fewer
//! helpers: its work falls back to the main session, and so does a listing
//! that failed on a helper, so errors are reported as the main session
//! meets them.
//!
//! Only listings run on helpers; every change to the server stays on the
//! main session, which refuses to act on a folder whose UIDVALIDITY is not
//! the one its snapshot saw (see [`ImapStore`]).

use super::{FolderNames, ImapStore, ImapStoreError, Result};
use ferry_core::store::{Since, Snapshot, Store};
use ferry_imap::Session;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// Opens one more logged-in session to the account's server: connection
/// `n` of the account (the main session is 1, helpers 2 and up).
pub type Opener = Arc<dyn Fn(usize) -> ferry_imap::Result<Session> + Send + Sync>;

/// Where a requested listing is.
enum Slot {
    /// Not started: no helper took it yet.
    Queued(Option<Since>),
    /// A helper is listing it.
    Running,
    /// Listed (or failed) on a helper.
    Done(Result<Snapshot>),
}

/// What the main session and the helpers share.
struct Shared {
    board: Mutex<Board>,
    changed: Condvar,
    opener: Opener,
    names: FolderNames,
    max_helpers: usize,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

/// The listings asked for, and the helpers' comings and goings.
#[derive(Default)]
struct Board {
    queue: VecDeque<String>,
    slots: HashMap<String, Slot>,
    closing: bool,
    /// Helpers started so far (connected or not).
    started: usize,
    /// Helpers waiting for work.
    idle: usize,
    /// A helper is connecting: the next one waits.
    connecting: bool,
    /// A helper could not connect: no more are tried.
    refused: bool,
}

impl Shared {
    fn board(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, board: MutexGuard<'a, Board>) -> MutexGuard<'a, Board> {
        self.changed
            .wait(board)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts one more helper if more is queued than the idle ones can
    /// take, none is connecting and none was refused.
    fn open_more(self: &Arc<Shared>, board: &mut Board) {
        let wanted = board.queue.len() > board.idle
            && !board.connecting
            && !board.refused
            && !board.closing
            && board.started < self.max_helpers;
        if !wanted {
            return;
        }
        board.started += 1;
        // The main session is connection 1.
        let number = board.started + 1;
        let shared = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name(format!("imap-helper-{number}"))
            .spawn(move || helper(&shared, number));
        match spawned {
            Ok(handle) => {
                board.connecting = true;
                (self.handles.lock().unwrap_or_else(PoisonError::into_inner)).push(handle);
            }
            Err(e) => {
                tracing::debug!("cannot start a thread for connection {number}: {e}");
                board.refused = true;
            }
        }
    }
}

/// The helper sessions of one [`ImapStore`].
pub(super) struct Ahead {
    shared: Arc<Shared>,
}

impl fmt::Debug for Ahead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ahead")
            .field("max_helpers", &self.shared.max_helpers)
            .finish_non_exhaustive()
    }
}

impl Ahead {
    /// Up to `max_helpers` sessions opened by `opener`, mapping names as
    /// `names` does.
    pub(super) fn new(opener: Opener, names: FolderNames, max_helpers: usize) -> Ahead {
        let shared = Shared {
            board: Mutex::default(),
            changed: Condvar::new(),
            opener,
            names,
            max_helpers,
            handles: Mutex::default(),
        };
        Ahead {
            shared: Arc::new(shared),
        }
    }

    /// How many folders may usefully be asked for ahead.
    pub(super) fn depth(&self) -> usize {
        self.shared.max_helpers
    }

    /// Lists `folder` on a helper (changes since `since`, else in full).
    pub(super) fn request(&mut self, folder: &str, since: Option<Since>) {
        let mut board = self.shared.board();
        if board.slots.contains_key(folder) {
            return;
        }
        board.queue.push_back(folder.to_string());
        board.slots.insert(folder.to_string(), Slot::Queued(since));
        self.shared.open_more(&mut board);
        drop(board);
        self.shared.changed.notify_all();
    }

    /// The listing of `folder` a helper made; `None` when none was asked
    /// for or none started it (it is withdrawn: the caller lists it).
    pub(super) fn take(&mut self, folder: &str) -> Option<Result<Snapshot>> {
        let mut board = self.shared.board();
        loop {
            match board.slots.remove(folder)? {
                Slot::Queued(_) => {
                    board.queue.retain(|f| f != folder);
                    return None;
                }
                Slot::Done(result) => return Some(result),
                Slot::Running => {
                    board.slots.insert(folder.to_string(), Slot::Running);
                    board = self.shared.wait(board);
                }
            }
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.shared.board().closing = true;
        self.shared.changed.notify_all();
        loop {
            let handle = (self.shared.handles.lock())
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match handle {
                // A helper that panicked has posted nothing more to wait for.
                Some(handle) => drop(handle.join()),
                None => break,
            }
        }
    }
}

/// One helper: connects (and lets the next one connect), then lists what
/// is queued until told to close or its session breaks.
fn helper(shared: &Arc<Shared>, number: usize) {
    let Some(mut store) = connect(shared, number) else {
        return;
    };
    tracing::debug!("connection {number} open to list folders ahead");
    while let Some((folder, since)) = next_job(shared) {
        let result = catch_unwind(AssertUnwindSafe(|| match &since {
            Some(since) => store.snapshot_since(&folder, since),
            None => store.snapshot(&folder),
        }))
        .unwrap_or_else(|_| {
            Err(ImapStoreError::Unusable {
                reason: "a helper connection failed unexpectedly".into(),
            })
        });
        let broken = result.is_err() && store.broken.is_some();
        shared.board().slots.insert(folder, Slot::Done(result));
        shared.changed.notify_all();
        if broken {
            tracing::debug!("connection {number} lost; going on with fewer");
            return;
        }
    }
    if let Err(e) = store.logout() {
        tracing::debug!("connection {number}: logout: {e}");
    }
}

/// Opens helper `number`'s store, unless the run is closing; then lets the
/// next helper open, or stops them after a refusal.
fn connect(shared: &Arc<Shared>, number: usize) -> Option<ImapStore> {
    let closing = shared.board().closing;
    let opened = match closing {
        true => None,
        false => Some(ImapStore::helper(
            (shared.opener)(number),
            shared.names.clone(),
        )),
    };
    let mut board = shared.board();
    board.connecting = false;
    match opened {
        Some(Ok(store)) => {
            shared.open_more(&mut board);
            Some(store)
        }
        Some(Err(e)) => {
            board.refused = true;
            tracing::info!("connection {number} not opened ({e}); going on with fewer");
            None
        }
        None => None,
    }
}

/// The next queued listing, marked running; `None` once closing.
fn next_job(shared: &Shared) -> Option<(String, Option<Since>)> {
    let mut board = shared.board();
    loop {
        if board.closing {
            return None;
        }
        if let Some(folder) = board.queue.pop_front() {
            let since = match board.slots.insert(folder.clone(), Slot::Running) {
                Some(Slot::Queued(since)) => since,
                _ => None,
            };
            return Some((folder, since));
        }
        board.idle += 1;
        board = shared.wait(board);
        board.idle -= 1;
    }
}
