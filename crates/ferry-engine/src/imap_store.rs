//! The far side over IMAP: [`ImapStore`] implements
//! [`Store`] on one logged-in
//! [`Session`].
//!
//! It follows design.md's "IMAP rules a correct client follows": flags are
//! changed with `+FLAGS.SILENT` / `-FLAGS.SILENT` only; only ferry's own
//! messages are expunged, with `UID EXPUNGE` (UIDPLUS), never with EXPUNGE
//! or CLOSE, so without UIDPLUS removed messages stay `\Deleted`; extensions
//! the server does not advertise are never used; `\Recent` is never sent.
//! Batches are pipelined: flag changes in one round trip, bodies fetched
//! with one command per message in a window of commands, APPENDs streamed
//! and collected later.
//!
//! Bodies never sit in memory whole: a body read from the server goes from
//! the socket to the [`BodyTarget`] chunk by
//! chunk, and a message written to the store is streamed into the APPEND's
//! literal as it arrives.
//!
//! Folder names are local names (design.md, "Local layout"), mapped by
//! [`FolderNames`]: the personal namespace prefix is stripped, the server's
//! delimiter becomes `/`, names are decoded from modified UTF-7, and INBOX
//! is `INBOX`. Server names that have no such form (for now: a `/` inside a
//! name when the delimiter is something else; the Maildir layer will escape
//! it as `%2F`) are skipped with a warning.
//!
//! The session's selected folder is remembered: a call selects only when
//! another folder is selected, except [`Store::snapshot`], which always
//! selects, so its markers are those of now. The UIDVALIDITY each snapshot
//! saw is remembered too: a later SELECT that reports another one refuses
//! to act on the folder (its UIDs may name other messages now).
//!
//! With more connections allowed ([`ImapStore::with_helpers`]), the next
//! folders are listed, and their flag changes and removals made, ahead on
//! helper sessions, and so are moves out of other folders (module
//! `ahead`); large reads are shared with them (module `spread`).

mod ahead;
mod append;
mod bodies;
mod changes;
mod error;
mod folders;
mod messages;
mod names;
mod spread;

pub use ahead::Opener;
pub use error::{ImapStoreError, Refusal};
pub use names::{FolderNames, NameProblem};

use ferry_core::store::{
    Batch, BodyTarget, Capabilities, FlagChange, FolderStatus, Keyed, Markers, Since, Snapshot,
    Store,
};
use ferry_core::{Flags, MessageKey, Uid};
use ferry_imap::{SelectOptions, Session};
use std::collections::HashMap;

type Result<T, E = ImapStoreError> = std::result::Result<T, E>;

/// How many UIDs one command names (keeps command lines short).
const UIDS_PER_COMMAND: usize = 1000;

/// The IMAP side of a sync.
#[derive(Debug)]
pub struct ImapStore {
    session: Session,
    names: FolderNames,
    writes: append::Writes,
    broken: Option<String>,
    /// The UIDVALIDITY each folder's snapshot saw, by local name.
    validities: HashMap<String, u32>,
    ahead: Option<ahead::Ahead>,
    /// Moves handed to helpers: (from, to) -> the request's number.
    moves_ahead: HashMap<(String, String), u64>,
    reconnect: Option<Reconnect>,
    /// The folder listing sent at login, for the first `list_folders`.
    early_listing: Option<folders::EarlyListing>,
}

/// How a broken main session is replaced (see [`ImapStore::with_reconnect`]).
struct Reconnect {
    opener: Opener,
    left: usize,
}

impl std::fmt::Debug for Reconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconnect")
            .field("left", &self.left)
            .finish()
    }
}

impl ImapStore {
    /// The store over a connected, logged-in `session`: switches on
    /// CONDSTORE and QRESYNC where offered and learns the personal
    /// namespace (NAMESPACE, once) to map folder names.
    pub fn new(mut session: Session) -> Result<ImapStore> {
        if !session.is_authenticated() {
            return Err(ImapStoreError::Unusable {
                reason: "the session is not logged in".into(),
            });
        }
        let (_, spaces, sent) = session
            .enable_and_namespace_then(&["CONDSTORE", "QRESYNC"], |s| s.send_list_with_status(true))
            .map_err(ImapStoreError::Session)?;
        let mut early_listing = sent.map(folders::EarlyListing::Sent);
        if needs_delimiter(&spaces) {
            // The delimiter is asked with a LIST, whose responses must not
            // mix with the listing's.
            early_listing = early_listing.map(|early| early.receive(&mut session));
        }
        let names = discover_names(&mut session, spaces).map_err(ImapStoreError::Session)?;
        tracing::debug!(
            "server folder names: prefix {:?}, delimiter {:?}",
            names.prefix(),
            names.delimiter()
        );
        Ok(ImapStore {
            early_listing,
            ..ImapStore::over(session, names)
        })
    }

    /// A helper's store (see [`ImapStore::with_helpers`]): the names are
    /// the main session's, so only ENABLE is sent.
    fn helper(session: ferry_imap::Result<Session>, names: FolderNames) -> Result<ImapStore> {
        let mut session = session.map_err(ImapStoreError::Session)?;
        session
            .enable(&["CONDSTORE", "QRESYNC"])
            .map_err(ImapStoreError::Session)?;
        Ok(ImapStore::over(session, names))
    }

    fn over(session: Session, names: FolderNames) -> ImapStore {
        ImapStore {
            session,
            names,
            writes: append::Writes::default(),
            broken: None,
            validities: HashMap::new(),
            ahead: None,
            moves_ahead: HashMap::new(),
            reconnect: None,
            early_listing: None,
        }
    }

    /// Lets the store list folders ahead on up to `helpers` more sessions,
    /// each opened by `opener` when first needed (the account's
    /// `connections`, less the main one). Call it after
    /// [`ImapStore::with_folder_map`].
    pub fn with_helpers(mut self, opener: Opener, helpers: usize) -> ImapStore {
        self.ahead = (helpers > 0).then(|| ahead::Ahead::new(opener, self.names.clone(), helpers));
        self
    }

    /// Makes the helpers the engine expects to need connect the first
    /// alone and the others once it is in, rather than all side by side:
    /// for a server known to refuse connections (a recent run could not
    /// open one), so that one that allows no more refuses only one. Call
    /// it after [`ImapStore::with_helpers`].
    pub fn connecting_helpers_carefully(mut self) -> ImapStore {
        if let Some(ahead) = &mut self.ahead {
            ahead.connect_carefully();
        }
        self
    }

    /// Lets the store open a new main session with `opener` when the
    /// connection is lost (or the server ends it, as Dovecot does over a
    /// message it cannot read), up to `times` times in a run. The work
    /// under way when it broke fails, as before; later work (other folders)
    /// goes on over the new session.
    pub fn with_reconnect(mut self, opener: Opener, times: usize) -> ImapStore {
        self.reconnect = Some(Reconnect {
            opener,
            left: times,
        });
        self
    }

    /// Applies the account's `folder_map` (server name -> local name).
    pub fn with_folder_map(mut self, map: impl IntoIterator<Item = (String, String)>) -> ImapStore {
        self.names = self.names.with_map(map);
        self
    }

    /// How this server's folder names map to local names.
    pub fn names(&self) -> &FolderNames {
        &self.names
    }

    /// The local name of server folder `wire` (see [`FolderNames`]).
    pub fn local_name(&self, wire: &str) -> Option<String> {
        self.names.local_name(wire)
    }

    /// The server name of local folder `local` (see [`FolderNames`]).
    pub fn wire_name(&self, local: &str) -> String {
        self.names.wire_name(local)
    }

    /// The session, to read capabilities and the like.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Gives the session back (pending writes are abandoned, helper
    /// sessions closed).
    pub fn into_session(mut self) -> Session {
        self.ahead = None;
        // Read what no command asked for yet, for a clean session.
        let _ = self.drop_early_listing();
        self.session
    }

    /// Logs out without waiting for the server's goodbye (see
    /// [`Session::close`]), helper sessions first; returns whether a helper
    /// could not connect in the store's life (the server may allow fewer
    /// connections than asked).
    pub fn close(mut self) -> bool {
        let refused = self.ahead.take().is_some_and(ahead::Ahead::close);
        self.session.close();
        refused
    }

    /// Readies the session for a command: connects again where it broke
    /// (see [`ImapStore::revive`]), refuses where it stays broken, and
    /// reads off the listing sent at login that nobody took.
    fn ready(&mut self) -> Result<()> {
        self.revive();
        self.alive()?;
        self.drop_early_listing()
    }

    /// Refuses to work on a session an earlier failure broke.
    fn alive(&self) -> Result<()> {
        match &self.broken {
            Some(reason) => Err(ImapStoreError::Unusable {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Replaces a broken session with a new one while reconnects are left
    /// and no APPEND waits for its completion on the old one.
    fn revive(&mut self) {
        let (Some(reason), Some(reconnect)) = (&self.broken, &mut self.reconnect) else {
            return;
        };
        if reconnect.left == 0 || !self.writes.settled() {
            return;
        }
        reconnect.left -= 1;
        let opened = (reconnect.opener)(1).and_then(|mut session| {
            session.enable(&["CONDSTORE", "QRESYNC"])?;
            Ok(session)
        });
        match opened {
            Ok(session) => {
                tracing::warn!("connected to the server again after: {reason}");
                self.session = session;
                self.early_listing = None;
                self.broken = None;
            }
            Err(e) => {
                reconnect.left = 0;
                self.broken = Some(format!("{reason}; connecting again failed: {e}"));
            }
        }
    }

    /// Runs `op` on a live store (connecting again first if the session
    /// broke, see [`ImapStore::with_reconnect`]); an error that ends the
    /// session marks the store broken.
    fn guard<T>(&mut self, op: impl FnOnce(&mut ImapStore) -> Result<T>) -> Result<T> {
        self.ready()?;
        // Unsolicited responses (EXISTS, EXPUNGE, FETCH of other clients'
        // changes) are not used: the next snapshot sees their effect.
        drop(self.session.take_unsolicited());
        let result = op(self);
        if let Err(e) = &result {
            self.note(e);
        }
        result
    }

    fn note(&mut self, error: &ImapStoreError) {
        if error.ends_session() && self.broken.is_none() {
            self.broken = Some(error.to_string());
        }
    }

    /// The server name of local folder `folder`, refused when it cannot be
    /// written there.
    fn wire(&self, folder: &str) -> Result<String> {
        self.names
            .checked_wire_name(folder)
            .map_err(|problem| ImapStoreError::BadName {
                name: folder.to_string(),
                problem,
            })
    }

    /// Selects `folder` unless it is selected already; returns its wire name.
    fn open(&mut self, folder: &str) -> Result<String> {
        let wire = self.wire(folder)?;
        if self.session.selected() != Some(wire.as_str()) {
            self.select(folder, &wire)?;
        }
        Ok(wire)
    }

    /// Selects `folder` to act on it: refused when its UIDVALIDITY is not
    /// the one its snapshot saw.
    fn select(&mut self, folder: &str, wire: &str) -> Result<ferry_imap::Selected> {
        let options = SelectOptions {
            condstore: true,
            ..SelectOptions::default()
        };
        let selected = self
            .session
            .select(wire, &options)
            .map_err(|e| ImapStoreError::folder(folder, e))?;
        match (self.validities.get(folder), selected.uid_validity) {
            (Some(&seen), now) if now != Some(seen) => {
                // Leave the folder, so that no later call finds it selected
                // and acts on it without this check; a session that cannot
                // leave it is not used again.
                if let Err(e) = self.session.unselect() {
                    self.broken.get_or_insert(e.to_string());
                }
                Err(ImapStoreError::ValidityChanged {
                    folder: folder.to_string(),
                    seen,
                    now: now.unwrap_or(0),
                })
            }
            _ => Ok(selected),
        }
    }

    /// Remembers the UIDVALIDITY `snapshot` of `folder` saw.
    fn saw(&mut self, folder: &str, snapshot: Result<Snapshot>) -> Result<Snapshot> {
        if let Ok(snapshot) = &snapshot {
            match snapshot.identity.validity {
                Some(validity) => self.validities.insert(folder.to_string(), validity.get()),
                None => self.validities.remove(folder),
            };
        }
        snapshot
    }

    /// A listing of `folder` made ahead on a helper session, if there is a
    /// good one.
    fn listed_ahead(&mut self, folder: &str) -> Option<Snapshot> {
        match self.ahead.as_mut()?.take(ahead::Kind::List, folder)? {
            ahead::Done::Listed(Ok(snapshot)) => Some(snapshot),
            ahead::Done::Listed(Err(e)) => {
                tracing::debug!("listing {folder:?} on a helper failed ({e}); listing it again");
                None
            }
            _ => None,
        }
    }

    /// The outcome of exactly `asked` (flag changes, removals or a move,
    /// as `kind` says) made in `folder` ahead on a helper session, if it
    /// got through (else they are made again, see module `ahead`).
    fn done_ahead<T: PartialEq, R>(
        &mut self,
        kind: ahead::Kind,
        folder: &str,
        asked: &[T],
        outcome: impl FnOnce(ahead::Done) -> Option<(Vec<T>, Result<Vec<Result<R>>>)>,
    ) -> Option<Vec<Result<R>>> {
        match outcome(self.ahead.as_mut()?.take(kind, folder)?)? {
            (done, Ok(results)) if done == asked => Some(results),
            (_, Ok(_)) => None,
            (_, Err(e)) => {
                tracing::debug!("{kind:?} in {folder:?} on a helper failed ({e}); doing it again");
                None
            }
        }
    }

    /// Takes on the UIDVALIDITY the main session's snapshot of `folder`
    /// saw, for work handed over from it.
    fn assume_validity(&mut self, folder: &str, validity: Option<u32>) {
        match validity {
            Some(validity) => self.validities.insert(folder.to_string(), validity),
            None => self.validities.remove(folder),
        };
    }
}

/// Whether the personal namespace leaves the delimiter unknown (it is then
/// asked with `LIST "" ""`).
fn needs_delimiter(spaces: &[(String, Option<char>)]) -> bool {
    spaces
        .first()
        .is_none_or(|(_, delimiter)| delimiter.is_none())
}

/// The personal namespace's prefix and delimiter, from what NAMESPACE
/// reported (the delimiter from LIST when it gives none).
fn discover_names(
    session: &mut Session,
    spaces: Vec<(String, Option<char>)>,
) -> ferry_imap::Result<FolderNames> {
    let (prefix, delimiter) = spaces.into_iter().next().unwrap_or_default();
    let delimiter = match delimiter {
        Some(d) => Some(d),
        None => session.list("", "")?.first().and_then(|e| e.delimiter),
    };
    Ok(FolderNames::new(prefix, delimiter))
}

/// The UIDs of `keys`, with an error for each key that is not a UID.
fn split_keys(keys: &[MessageKey]) -> (Vec<u32>, Vec<Keyed<(), ImapStoreError>>) {
    let mut uids = Vec::with_capacity(keys.len());
    let mut foreign = Vec::new();
    for key in keys {
        match key {
            MessageKey::Uid(uid) => uids.push(uid.get()),
            other => foreign.push((
                other.clone(),
                Err(ImapStoreError::NotAUid { key: other.clone() }),
            )),
        }
    }
    (uids, foreign)
}

/// The UID of a key (0, which no message has, for a Maildir name).
fn uid_of(key: &MessageKey) -> u32 {
    match key {
        MessageKey::Uid(uid) => uid.get(),
        MessageKey::Name(_) => 0,
    }
}

/// A message key for a UID the server sent (never zero: the parser refuses
/// UID 0).
fn uid_key(uid: u32) -> Option<MessageKey> {
    Uid::new(uid).ok().map(MessageKey::Uid)
}

/// The flags a FETCH reported (none when it sent no FLAGS).
fn fetched_flags(fetch: &ferry_imap::proto::response::Fetch) -> Flags {
    (fetch.flags.iter().flatten())
        .filter_map(|f| ferry_core::Flag::from_imap(f))
        .collect()
}

/// IMAP names of `flags`; a keyword that is not a valid IMAP atom (which
/// would corrupt the command) is left out with a warning.
fn imap_flags(flags: &Flags) -> Vec<String> {
    flags
        .iter()
        .map(|f| f.imap_name())
        .filter(|name| {
            let ok = is_flag_atom(name);
            if !ok {
                tracing::warn!("flag {name:?} is not a valid IMAP keyword; it is not sent");
            }
            ok
        })
        .map(str::to_string)
        .collect()
}

fn is_flag_atom(name: &str) -> bool {
    let body = name.strip_prefix('\\').unwrap_or(name);
    !body.is_empty()
        && !name.eq_ignore_ascii_case("\\Recent")
        && body.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

impl Store for ImapStore {
    type Error = ImapStoreError;

    fn capabilities(&self) -> Capabilities {
        let has = |c| self.session.has_capability(c);
        Capabilities {
            atomic_move: has("MOVE"),
            selective_expunge: has("UIDPLUS"),
            // QRESYNC: HIGHESTMODSEQ then moves with expunges too, so
            // unchanged markers prove an unchanged folder.
            change_tracking: has("QRESYNC"),
            reports_new_keys: has("UIDPLUS"),
            keywords: true,
            fingerprints_writes: false,
            lists_changes: true,
        }
    }

    fn list_folders(&mut self) -> Result<Vec<FolderStatus>> {
        // The listing sent at login is used only on the live session that
        // sent it (`revive` forgets it when it replaces the session).
        self.revive();
        let early = match self.broken {
            None => self.early_listing.take(),
            Some(_) => None,
        };
        self.guard(|s| s.list_all(early))
    }

    fn create_folder(&mut self, name: &str) -> Result<()> {
        self.guard(|s| s.create(name))
    }

    fn delete_folder(&mut self, name: &str) -> Result<()> {
        self.guard(|s| s.delete(name))
    }

    fn rename_folder(&mut self, from: &str, to: &str) -> Result<()> {
        self.guard(|s| s.rename(from, to))
    }

    fn snapshot(&mut self, folder: &str) -> Result<Snapshot> {
        let snapshot = match self.listed_ahead(folder) {
            Some(snapshot) => Ok(snapshot),
            None => self.guard(|s| s.list_messages(folder)),
        };
        self.saw(folder, snapshot)
    }

    fn snapshot_since(&mut self, folder: &str, since: &Since) -> Result<Snapshot> {
        let snapshot = match self.listed_ahead(folder) {
            Some(snapshot) => Ok(snapshot),
            None => self.guard(|s| s.list_changes(folder, since)),
        };
        self.saw(folder, snapshot)
    }

    /// Checks later changes in `folder` against the UIDVALIDITY the state
    /// proved, as if the folder had been listed.
    fn known_unchanged(&mut self, folder: &str, snapshot: &Snapshot) {
        self.assume_validity(folder, snapshot.identity.validity.map(|v| v.get()));
    }

    fn ahead_depth(&self) -> usize {
        self.ahead.as_ref().map_or(0, ahead::Ahead::depth)
    }

    fn expect_ahead(&mut self, folders: usize) {
        if let Some(ahead) = &mut self.ahead {
            ahead.expect(folders);
        }
    }

    fn list_ahead(&mut self, folder: &str, since: Option<&Since>) {
        if let Some(ahead) = &mut self.ahead {
            ahead.request(folder, ahead::Job::List(since.cloned()));
        }
    }

    fn set_flags_ahead(&mut self, folder: &str, changes: &[FlagChange]) {
        let validity = self.validities.get(folder).copied();
        if let Some(ahead) = &mut self.ahead {
            ahead.request(folder, ahead::Job::Flags(changes.to_vec(), validity));
        }
    }

    fn cancel_ahead(&mut self) {
        if let Some(ahead) = &mut self.ahead {
            ahead.cancel_changes();
        }
        self.moves_ahead.clear();
    }

    fn move_ahead(&mut self, from: &str, keys: &[MessageKey], to: &str) {
        let job = ahead::MoveJob {
            keys: keys.to_vec(),
            to: to.to_string(),
            validity: self.validities.get(from).copied(),
        };
        let asked = (from.to_string(), to.to_string());
        if let (Some(ahead), false) = (&mut self.ahead, self.moves_ahead.contains_key(&asked)) {
            self.moves_ahead
                .insert(asked, ahead.request_move(from, job));
        }
    }

    fn remove_ahead(&mut self, folder: &str, keys: &[MessageKey]) {
        let validity = self.validities.get(folder).copied();
        if let Some(ahead) = &mut self.ahead {
            ahead.request(folder, ahead::Job::Remove(keys.to_vec(), validity));
        }
    }

    fn read_bodies(
        &mut self,
        folder: &str,
        keys: &[MessageKey],
        target: &mut dyn BodyTarget,
    ) -> Batch<Keyed<(), ImapStoreError>, ImapStoreError> {
        self.guard(|s| s.read(folder, keys, target))
    }

    fn begin_writes(&mut self, folder: &str) -> Result<Box<dyn BodyTarget + '_>> {
        self.ready()?;
        let wire = self.wire(folder)?;
        self.writes.start(folder, wire);
        Ok(Box::new(append::AppendTarget::new(self)))
    }

    fn finish_writes(
        &mut self,
    ) -> Batch<Keyed<Option<MessageKey>, ImapStoreError>, ImapStoreError> {
        // Not guarded: messages that completed before the session was lost
        // still get their keys.
        Ok(self.collect_writes())
    }

    fn find_stored(
        &mut self,
        folder: &str,
        message_id: Option<&str>,
        size: u64,
        since: &Markers,
    ) -> Result<Option<MessageKey>> {
        match (message_id, since.uid_next) {
            (Some(id), from) => self.find_appended(folder, from.unwrap_or(1), Some(id), size),
            (None, Some(from)) => self.find_appended(folder, from, None, size),
            // Among all messages, "the one without a Message-ID of this
            // size" identifies nothing.
            (None, None) => Ok(None),
        }
    }

    fn set_flags(
        &mut self,
        folder: &str,
        changes: &[FlagChange],
    ) -> Batch<Result<(), ImapStoreError>, ImapStoreError> {
        let flagged = |done| match done {
            ahead::Done::Flagged(changes, result) => Some((changes, result)),
            _ => None,
        };
        if let Some(results) = self.done_ahead(ahead::Kind::Flags, folder, changes, flagged) {
            return Ok(results);
        }
        self.guard(|s| s.change_flags(folder, changes))
    }

    fn remove(
        &mut self,
        folder: &str,
        keys: &[MessageKey],
    ) -> Batch<Result<(), ImapStoreError>, ImapStoreError> {
        let removed = |done| match done {
            ahead::Done::Removed(keys, result) => Some((keys, result)),
            _ => None,
        };
        if let Some(results) = self.done_ahead(ahead::Kind::Remove, folder, keys, removed) {
            return Ok(results);
        }
        self.guard(|s| s.delete_messages(folder, keys))
    }

    fn move_messages(
        &mut self,
        from: &str,
        keys: &[MessageKey],
        to: &str,
    ) -> Batch<Result<Option<MessageKey>, ImapStoreError>, ImapStoreError> {
        let asked = (from.to_string(), to.to_string());
        if let Some(number) = self.moves_ahead.remove(&asked) {
            let moved = |done| match done {
                ahead::Done::Moved(keys, result) => Some((keys, result)),
                _ => None,
            };
            let kind = ahead::Kind::Move(number);
            if let Some(results) = self.done_ahead(kind, from, keys, moved) {
                return Ok(results);
            }
        }
        self.guard(|s| s.relocate(from, keys, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::Flag;

    #[test]
    fn only_valid_flags_are_sent() {
        let flags: Flags = [
            Flag::Seen,
            Flag::Keyword("$Label1".into()),
            Flag::Keyword("bad flag".into()),
            Flag::Keyword("x)\r\nA LOGOUT".into()),
            Flag::Keyword("\\Recent".into()),
        ]
        .into_iter()
        .collect();
        assert_eq!(imap_flags(&flags), ["\\Seen", "$Label1"]);
    }
}
