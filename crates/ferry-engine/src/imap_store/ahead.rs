//! Work ahead on more connections (the account's `connections`): while
//! the engine works on one folder, helper sessions already list the next
//! ones and make their flag changes and removals, and make the moves out
//! of other folders while the main session makes one, so that a run over
//! many changed folders pays the server's round trips and SELECT work side
//! by side instead of one folder after another.
//!
//! The engine asks for work ahead ([`Ahead::request`]) and later for its
//! outcome ([`Ahead::take`]). Flag changes and removals are idempotent, so
//! making them early changes nothing but the time, and one that failed on
//! a helper is made again on the main session. Moves are handed ahead only
//! where a move is one command (IMAP MOVE): one that failed on a helper is
//! made again too, and messages it had moved are no longer in the source,
//! so they are reported moved with their new key unknown, which the next
//! run learns. A request no helper has started yet is given back (the
//! main session does the work itself); one a helper is working on is
//! waited for. When the run stops or fails, the changes no helper started
//! are withdrawn ([`Ahead::cancel_changes`]).
//!
//! Helpers connect when work is queued that idle helpers cannot take, one
//! after another, or as the run starts for the folders the engine expects
//! to hand ahead ([`Ahead::expect`]): side by side, or where the caller
//! knows the server to refuse connections ([`Ahead::connect_carefully`]),
//! the first alone and the others once it is in, so that a server that
//! allows no more refuses only one. Once one cannot connect (the server
//! allows fewer connections: Courier 4 per IP, Dovecot 10 per user and IP)
//! no more are tried, and [`Ahead::close`] says so. A helper that cannot
//! connect or whose session breaks only means fewer helpers: its work
//! falls back to the main session, and so does a listing that failed on a
//! helper, so errors are reported as the main session meets them.
//!
//! A helper refuses to change flags, remove or move messages in a folder
//! whose UIDVALIDITY is not the one the main session's snapshot saw, as the
//! main session does (see [`ImapStore`]). Helpers also read pieces of a
//! large read (module `spread`), which report to their reader rather than
//! to the board. Everything else that changes the server (copies, folders)
//! stays on the main session.

use super::spread::Piece;
use super::{FolderNames, ImapStore, ImapStoreError, Result};
use ferry_core::MessageKey;
use ferry_core::store::{FlagChange, Since, Snapshot, Store};
use ferry_imap::Session;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// Opens one more logged-in session to the account's server: connection
/// `n` of the account (the main session is 1, helpers 2 and up).
pub type Opener = Arc<dyn Fn(usize) -> ferry_imap::Result<Session> + Send + Sync>;

/// Work a helper can do ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    /// List the folder.
    List,
    /// Push flag changes to it.
    Flags,
    /// Remove messages from it.
    Remove,
    /// Move messages from it, by the number of the request.
    Move(u64),
    /// Read a piece of a read spread over the connections, by its number.
    Piece(u64),
}

/// One piece of work, as asked.
pub(super) enum Job {
    /// List the changes since, else everything.
    List(Option<Since>),
    /// These flag changes, in a folder whose snapshot saw this UIDVALIDITY.
    Flags(Vec<FlagChange>, Option<u32>),
    /// Remove these messages, in a folder whose snapshot saw this
    /// UIDVALIDITY.
    Remove(Vec<MessageKey>, Option<u32>),
    /// Move these messages to another folder (a numbered request), from a
    /// folder whose snapshot saw this UIDVALIDITY.
    Move(u64, MoveJob),
    /// A piece of a read (see module `spread`), by its number.
    Piece(u64, Piece),
}

impl Job {
    fn kind(&self) -> Kind {
        match self {
            Job::List(_) => Kind::List,
            Job::Flags(..) => Kind::Flags,
            Job::Remove(..) => Kind::Remove,
            Job::Move(number, _) => Kind::Move(*number),
            Job::Piece(number, _) => Kind::Piece(*number),
        }
    }
}

/// A move handed to a helper.
pub(super) struct MoveJob {
    /// The messages, in the folder the request names.
    pub(super) keys: Vec<MessageKey>,
    /// The folder they go to.
    pub(super) to: String,
    /// The UIDVALIDITY the main session's snapshot of the source saw.
    pub(super) validity: Option<u32>,
}

/// What a helper's work came to.
pub(super) enum Done {
    /// A listing.
    Listed(Result<Snapshot>),
    /// Flag changes: which were made, for exactly these changes.
    Flagged(Vec<FlagChange>, Result<Vec<Result<()>>>),
    /// Removals: which were made, for exactly these messages.
    Removed(Vec<MessageKey>, Result<Vec<Result<()>>>),
    /// A move: each message's new key where reported, for exactly these
    /// messages.
    Moved(Vec<MessageKey>, Result<Vec<Result<Option<MessageKey>>>>),
    /// A piece read: its messages went to the reader (what failed, the
    /// reader reads again).
    Read,
}

/// Where a requested piece of work is.
enum Slot {
    /// Not started: no helper took it yet.
    Queued(Job),
    /// A helper is on it.
    Running,
    /// Done (or failed) on a helper.
    Done(Done),
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
    queue: VecDeque<(Kind, String)>,
    slots: HashMap<(Kind, String), Slot>,
    closing: bool,
    /// Helpers started so far (connected or not).
    started: usize,
    /// Helpers waiting for work.
    idle: usize,
    /// Helpers connecting: while one is, more work waits for it rather
    /// than opening another.
    connecting: usize,
    /// A helper could not connect: no more are tried.
    refused: bool,
    /// Helpers to open before any work is queued (see [`Ahead::expect`]).
    expected: usize,
    /// Helpers that connected.
    opened: usize,
    /// Expected helpers connect one after another until one is in.
    carefully: bool,
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

    /// Starts helpers while [`Shared::open_more`] wants one more.
    fn open_wanted(self: &Arc<Shared>, board: &mut Board) {
        loop {
            let started = board.started;
            self.open_more(board);
            if board.started == started {
                return;
            }
        }
    }

    /// Starts one more helper if more is queued than the idle ones can
    /// take, or fewer are started than expected; never after a refusal.
    /// Helpers connect one at a time, except expected ones: side by side,
    /// or when connecting carefully, once a first helper got in (a server
    /// that allows none refuses one only).
    fn open_more(self: &Arc<Shared>, board: &mut Board) {
        let more_queued = board.queue.len() > board.idle && board.connecting == 0;
        let expected = board.started < board.expected
            && (!board.carefully || board.connecting == 0 || board.opened > 0);
        let wanted = (more_queued || expected)
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
                board.connecting += 1;
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
    /// The number of the next numbered request (pieces, moves).
    next_piece: u64,
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
            next_piece: 0,
        }
    }

    /// How many folders may usefully be asked for ahead.
    pub(super) fn depth(&self) -> usize {
        self.shared.max_helpers
    }

    /// Opens helpers for `folders` listings to come, up to the most
    /// allowed: side by side, or the first alone when connecting carefully.
    pub(super) fn expect(&mut self, folders: usize) {
        let mut board = self.shared.board();
        board.expected = folders.min(self.shared.max_helpers);
        self.shared.open_wanted(&mut board);
    }

    /// Helpers expected ahead connect one after another until one is in
    /// (for a server known to refuse connections).
    pub(super) fn connect_carefully(&mut self) {
        self.shared.board().carefully = true;
    }

    /// Closes the helpers, and says whether one could not connect (or its
    /// thread not start) in the store's life; waits for the helpers, so a
    /// refusal met while closing counts too.
    pub(super) fn close(self) -> bool {
        let shared = Arc::clone(&self.shared);
        drop(self);
        shared.board().refused
    }

    /// Has `job` done for `folder` on a helper.
    pub(super) fn request(&mut self, folder: &str, job: Job) {
        let id = (job.kind(), folder.to_string());
        let mut board = self.shared.board();
        if board.slots.contains_key(&id) {
            return;
        }
        board.queue.push_back(id.clone());
        board.slots.insert(id, Slot::Queued(job));
        self.shared.open_more(&mut board);
        drop(board);
        self.shared.changed.notify_all();
    }

    /// Has `piece` of a read of `folder` read on a helper; returns its
    /// number. What it reads goes to the reader (see module `spread`).
    pub(super) fn request_piece(&mut self, folder: &str, piece: Piece) -> u64 {
        let number = self.next_number();
        self.request(folder, Job::Piece(number, piece));
        number
    }

    /// Has `job` (a move out of `folder`) done on a helper; returns its
    /// number, to [take](Ahead::take) its outcome by.
    pub(super) fn request_move(&mut self, folder: &str, job: MoveJob) -> u64 {
        let number = self.next_number();
        self.request(folder, Job::Move(number, job));
        number
    }

    /// A number no request of this run has had.
    fn next_number(&mut self) -> u64 {
        let number = self.next_piece;
        self.next_piece += 1;
        number
    }

    /// Withdraws the flag changes, removals and moves no helper has
    /// started.
    pub(super) fn cancel_changes(&mut self) {
        let changes = |kind: &Kind| matches!(kind, Kind::Flags | Kind::Remove | Kind::Move(_));
        let mut board = self.shared.board();
        let board = &mut *board;
        board.queue.retain(|id| {
            let withdrawn = changes(&id.0) && matches!(board.slots.get(id), Some(Slot::Queued(_)));
            if withdrawn {
                board.slots.remove(id);
            }
            !withdrawn
        });
    }

    /// Piece `number` of a read of `folder`, if no helper has started it
    /// (it is withdrawn: the caller reads it).
    pub(super) fn withdraw_piece(&mut self, folder: &str, number: u64) -> Option<Piece> {
        let id = (Kind::Piece(number), folder.to_string());
        let mut board = self.shared.board();
        match board.slots.remove(&id)? {
            Slot::Queued(Job::Piece(_, piece)) => {
                board.queue.retain(|queued| *queued != id);
                Some(piece)
            }
            other => {
                board.slots.insert(id, other);
                None
            }
        }
    }

    /// What a helper did of the `kind` of work for `folder`; `None` when
    /// none was asked for or none started it (it is withdrawn: the caller
    /// does it).
    pub(super) fn take(&mut self, kind: Kind, folder: &str) -> Option<Done> {
        let id = (kind, folder.to_string());
        let mut board = self.shared.board();
        loop {
            match board.slots.remove(&id)? {
                Slot::Queued(_) => {
                    board.queue.retain(|queued| *queued != id);
                    return None;
                }
                Slot::Done(done) => return Some(done),
                Slot::Running => {
                    board.slots.insert(id.clone(), Slot::Running);
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
    tracing::debug!("connection {number} open to work ahead");
    // The folder this session has open, as the session says after each job.
    let mut selected: Option<String> = None;
    while let Some((folder, job)) = next_job(shared, selected.as_deref()) {
        let kind = job.kind();
        let outcome = catch_unwind(AssertUnwindSafe(|| work(&mut store, &folder, job)));
        // After a panic the session may hold a half-read response: no more
        // work on it.
        let panicked = outcome.is_err();
        let done = outcome.unwrap_or_else(|_| {
            Done::Listed(Err(ImapStoreError::Unusable {
                reason: "a helper connection failed unexpectedly".into(),
            }))
        });
        let broken = panicked || store.broken.is_some();
        selected = (store.session.selected()).and_then(|wire| store.names.local_name(wire));
        let mut board = shared.board();
        match kind {
            // A piece reports to its reader, not here.
            Kind::Piece(_) => drop(board.slots.remove(&(kind, folder))),
            _ => drop(board.slots.insert((kind, folder), Slot::Done(done))),
        }
        drop(board);
        shared.changed.notify_all();
        if broken {
            tracing::debug!("connection {number} lost; going on with fewer");
            return;
        }
    }
    tracing::debug!("connection {number}: closing");
    store.close();
}

/// Does `job` for `folder` on a helper's store.
fn work(store: &mut ImapStore, folder: &str, job: Job) -> Done {
    match job {
        Job::List(Some(since)) => Done::Listed(store.snapshot_since(folder, &since)),
        Job::List(None) => Done::Listed(store.snapshot(folder)),
        Job::Flags(changes, validity) => {
            store.assume_validity(folder, validity);
            let result = store.set_flags(folder, &changes);
            Done::Flagged(changes, result)
        }
        Job::Remove(keys, validity) => {
            store.assume_validity(folder, validity);
            let result = store.remove(folder, &keys);
            Done::Removed(keys, result)
        }
        Job::Move(_, job) => {
            store.assume_validity(folder, job.validity);
            let result = store.move_messages(folder, &job.keys, &job.to);
            Done::Moved(job.keys, result)
        }
        Job::Piece(_, mut piece) => {
            if let Err(e) = piece.run(store, folder) {
                tracing::debug!(
                    "a piece of {folder:?} failed on a helper ({e}); the main session reads it"
                );
            }
            Done::Read
        }
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
    board.connecting = board.connecting.saturating_sub(1);
    match opened {
        Some(Ok(store)) => {
            // This helper takes the next job: more are opened only for
            // what is queued beyond it, and the other expected ones.
            board.opened += 1;
            board.idle += 1;
            shared.open_wanted(&mut board);
            board.idle -= 1;
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

/// The next queued job, marked running; `None` once closing. A change
/// (flags, removals, a move) in `selected`, the folder the helper's session
/// has open, comes first: it needs no SELECT (a round trip, and the
/// server's work of opening it). A listing always selects.
fn next_job(shared: &Shared, selected: Option<&str>) -> Option<(String, Job)> {
    let mut board = shared.board();
    loop {
        if board.closing {
            return None;
        }
        loop {
            let preferred = selected.and_then(|s| {
                (board.queue.iter()).position(|(kind, f)| f == s && *kind != Kind::List)
            });
            let next = match preferred {
                Some(at) => board.queue.remove(at),
                None => board.queue.pop_front(),
            };
            let Some(id) = next else {
                break;
            };
            match board.slots.remove(&id) {
                Some(Slot::Queued(job)) => {
                    board.slots.insert(id.clone(), Slot::Running);
                    return Some((id.1, job));
                }
                Some(other) => drop(board.slots.insert(id, other)),
                None => {}
            }
        }
        board.idle += 1;
        board = shared.wait(board);
        board.idle -= 1;
    }
}
