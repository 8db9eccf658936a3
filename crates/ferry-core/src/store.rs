//! The one interface both kinds of store implement.
//!
//! The engine syncs a pair of stores, far and near, through [`Store`] and
//! never knows which side is IMAP (mbsync's driver split is the model).
//! Calls take batches and return a result per item, so the IMAP store can
//! pipeline a batch in one round trip and one bad message never fails the
//! rest. Capabilities are abstract ([`Capabilities`]), not IMAP extension
//! names.
//!
//! Bodies flow **push-wise** in both directions: the source store reads
//! each message and pushes its bytes (CRLF line endings) into a
//! [`BodyTarget`] that the destination store provides: a Maildir delivery
//! (written to `tmp/`, made durable, renamed into place) or an IMAP APPEND
//! whose literal is streamed as the bytes arrive. Nothing is held in memory
//! whole, whatever the message size.
//!
//! Folder names are local names (design.md, "Local layout"); each store maps
//! them to its own (server names with their delimiter and namespace, or
//! Maildir paths).

use crate::{Flags, MessageKey, MessageMeta, UidValidity};
use std::collections::{HashMap, HashSet};
use std::io;

/// What a store can do, in abstract terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Moves a message between folders keeping its identity (IMAP MOVE,
    /// or COPY + expunge; a Maildir rename).
    pub atomic_move: bool,
    /// Removes exactly the given messages for good (IMAP UID EXPUNGE;
    /// Maildir unlink). Without it, removed messages are only marked
    /// deleted.
    pub selective_expunge: bool,
    /// Can tell that a folder is unchanged from [`Markers`] alone, without
    /// listing its messages (IMAP QRESYNC, whose HIGHESTMODSEQ also moves
    /// with expunges; Maildir directory stamps).
    pub change_tracking: bool,
    /// Reports the key of a stored message at once (APPENDUID; Maildir).
    /// Without it, new keys are found by searching (Message-ID, size).
    pub reports_new_keys: bool,
    /// Keeps keywords (flags other than the six with Maildir letters) with
    /// the message (IMAP). Without it (Maildir file names) they live in the
    /// engine's state: a snapshot never shows them, and changing them is
    /// no change to the store.
    pub keywords: bool,
    /// Fingerprints each message it stores while writing it (Maildir, on
    /// its delivery threads) and hands them over with
    /// [`Store::take_fingerprints`]: the engine then does not hash the
    /// stream a second time.
    pub fingerprints_writes: bool,
    /// [`Store::snapshot_since`] asks the store for changes only (IMAP);
    /// the engine gathers what the state knows only for such a store.
    pub lists_changes: bool,
}

/// What identifies one incarnation of a folder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FolderIdentity {
    /// IMAP UIDVALIDITY (none for Maildir).
    pub validity: Option<UidValidity>,
    /// IMAP MAILBOXID (RFC 8474), where offered.
    pub mailbox_id: Option<String>,
}

/// What a store compares next time to prove a folder unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Markers {
    /// IMAP UIDNEXT.
    pub uid_next: Option<u32>,
    /// IMAP HIGHESTMODSEQ (only with change tracking).
    pub mod_seq: Option<u64>,
    /// The number of messages.
    pub messages: Option<u32>,
    /// Maildir `new/` and `cur/` stamps (nanoseconds), when a listing proved
    /// them stable.
    pub stamps: Option<(i64, i64)>,
}

/// What the last completed sync knew of one side of a folder: enough for a
/// store that can report changes only (IMAP QRESYNC or CONDSTORE) to list
/// just those, and build the rest of the snapshot from what was known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Since {
    /// The folder's identity then; another UIDVALIDITY now means a full
    /// listing.
    pub identity: FolderIdentity,
    /// Its markers then, taken before that sync changed anything, so every
    /// change since (that sync's own included) is reported.
    pub markers: Markers,
    /// Every message the state pairs on this side, with the flags it had
    /// when last synced.
    pub known: Vec<(MessageKey, Flags)>,
}

/// A folder as [`Store::list_folders`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderStatus {
    /// Its local name.
    pub name: String,
    /// Its identity.
    pub identity: FolderIdentity,
    /// Its markers now.
    pub markers: Markers,
    /// Whether it can hold messages (IMAP `\Noselect` cannot).
    pub selectable: bool,
}

/// A folder's messages now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The folder's identity at the time of the listing.
    pub identity: FolderIdentity,
    /// Its markers at the time of the listing.
    pub markers: Markers,
    /// Every message, with flags (and size, Message-ID, fingerprint where
    /// the store knows them cheaply).
    pub messages: Vec<MessageMeta>,
    /// The folder changed so recently that the listing may have missed a
    /// message renamed while it was taken (a Maildir directory within its
    /// clock's granularity): before a missing message is taken for
    /// deleted, [`Store::settled_snapshot`] is asked.
    pub unsettled: bool,
}

/// A message about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Its key in the source store.
    pub source: MessageKey,
    /// The flags to give it.
    pub flags: Flags,
    /// Its arrival date (Unix seconds).
    pub internal_date: Option<i64>,
    /// Its exact size with CRLF line endings.
    pub size: u64,
    /// Its Message-ID, to find it again if the store cannot report keys.
    pub message_id: Option<String>,
    /// The key the destination must use, when the store lets the caller
    /// choose (a Maildir unique name chosen before the intent is journaled).
    pub planned_key: Option<MessageKey>,
}

/// Where a source store pushes message bodies.
pub trait BodyTarget {
    /// A message begins.
    fn begin(&mut self, message: &Incoming) -> io::Result<()>;
    /// The next bytes of the current message (CRLF line endings).
    fn write(&mut self, data: &[u8]) -> io::Result<()>;
    /// The current message is complete.
    fn end(&mut self) -> io::Result<()>;
}

/// A flag change for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    /// Which message.
    pub key: MessageKey,
    /// Flags to set.
    pub add: Flags,
    /// Flags to clear.
    pub remove: Flags,
}

/// What the engine should do about a failed call (design: skip the message,
/// skip the folder, abort the account, retry later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Only this message failed (e.g. OVERQUOTA, too large, a vanished file).
    Message,
    /// This folder cannot be synced now (e.g. it vanished, no permission).
    Folder,
    /// The store is unusable (connection lost, disk full, bad login).
    Store,
}

/// The errors of a store say how far they reach.
pub trait StoreError: std::error::Error + Send + Sync + 'static {
    /// How far the failure reaches.
    fn class(&self) -> ErrorClass;
}

/// The result of a batch call: the batch as a whole may fail (`Err`), else
/// every item has its own result.
pub type Batch<T, E> = Result<Vec<T>, E>;

/// One item's result, with the key of the message it concerns.
pub type Keyed<T, E> = (MessageKey, Result<T, E>);

/// One side of a sync: an IMAP account or a Maildir tree.
pub trait Store {
    /// The store's error.
    type Error: StoreError;

    /// What the store can do.
    fn capabilities(&self) -> Capabilities;

    /// Every folder, with identity and markers.
    fn list_folders(&mut self) -> Result<Vec<FolderStatus>, Self::Error>;

    /// Creates a folder.
    fn create_folder(&mut self, name: &str) -> Result<(), Self::Error>;

    /// Removes an empty folder.
    fn delete_folder(&mut self, name: &str) -> Result<(), Self::Error>;

    /// Renames a folder.
    fn rename_folder(&mut self, from: &str, to: &str) -> Result<(), Self::Error>;

    /// Lists a folder's messages, quickly (see [`Snapshot::unsettled`]).
    fn snapshot(&mut self, folder: &str) -> Result<Snapshot, Self::Error>;

    /// Lists a folder's messages from what changed since the last sync
    /// (`since`): messages reported unchanged keep the flags `since`
    /// knew, and carry no size or Message-ID (the state has those). A
    /// store that cannot tell changes lists everything: the default is
    /// [`Store::snapshot`].
    fn snapshot_since(&mut self, folder: &str, since: &Since) -> Result<Snapshot, Self::Error> {
        let _ = since;
        self.snapshot(folder)
    }

    /// How many folders [`Store::list_ahead`] may usefully be asked for
    /// beyond the one being worked on: 0 (the default) for a store that
    /// lists one folder at a time.
    fn ahead_depth(&self) -> usize {
        0
    }

    /// A hint before the first [`Store::list_ahead`]: about `folders`
    /// folders will be asked for ahead, so the store may get ready now
    /// (open its helper connections while the caller reads its state).
    /// The default does nothing.
    fn expect_ahead(&mut self, folders: usize) {
        let _ = folders;
    }

    /// Starts listing `folder` in the background (from the changes since
    /// `since` where given, as [`Store::snapshot_since`] would), for a
    /// later [`Store::snapshot`] or [`Store::snapshot_since`] of it to
    /// return. A hint: the default does nothing.
    fn list_ahead(&mut self, folder: &str, since: Option<&Since>) {
        let _ = (folder, since);
    }

    /// Starts pushing `changes` to `folder` in the background, for a later
    /// [`Store::set_flags`] of exactly these changes to return the outcome
    /// of. A hint: the default does nothing. Only for changes that may be
    /// made before the folders the engine works on first (flag changes
    /// are idempotent, and independent between folders).
    fn set_flags_ahead(&mut self, folder: &str, changes: &[FlagChange]) {
        let _ = (folder, changes);
    }

    /// Starts removing `keys` from `folder` in the background, for a later
    /// [`Store::remove`] of exactly these keys to return the outcome of. A
    /// hint: the default does nothing. Under the same condition as
    /// [`Store::set_flags_ahead`] (removals are idempotent too).
    fn remove_ahead(&mut self, folder: &str, keys: &[MessageKey]) {
        let _ = (folder, keys);
    }

    /// Starts moving `keys` from `from` to `to` in the background, for a
    /// later [`Store::move_messages`] of exactly these to return the
    /// outcome of. A hint: the default does nothing. Only once the folders
    /// are done with, for moves that do not depend on each other.
    fn move_ahead(&mut self, from: &str, keys: &[MessageKey], to: &str) {
        let _ = (from, keys, to);
    }

    /// Withdraws the flag changes, removals and moves handed ahead that
    /// the store has not started (the run stopped, or failed, and will
    /// not record them). The default does nothing.
    fn cancel_ahead(&mut self) {}

    /// Removes what an unfinished write of `key` into `folder` left behind
    /// (a Maildir file in `tmp/` of a run that was killed), once the write
    /// is given up for good. The default does nothing.
    fn discard_unfinished(&mut self, folder: &str, key: &MessageKey) -> Result<(), Self::Error> {
        let _ = (folder, key);
        Ok(())
    }

    /// Says that the run will touch only the messages of `folder` in
    /// `keep` (the rest is unchanged on both sides, or done with), once
    /// the folder is planned and again once its plan is carried out: a
    /// store may let go of what it remembers of the others and keep the
    /// rest for what follows. A hint: the default does nothing.
    fn keep_only(&mut self, folder: &str, keep: &HashSet<MessageKey>) {
        let _ = (folder, keep);
    }

    /// Says that the engine built `snapshot` of `folder` from the state
    /// instead of listing it, because the folder's markers prove it
    /// unchanged since the last sync: it holds only the messages the run
    /// may touch, with the flags they had then. A store remembers what a
    /// listing would have told it, so that acting on those messages needs
    /// no listing (IMAP: the UIDVALIDITY its changes are checked against;
    /// Maildir: each message's file). The default does nothing.
    fn known_unchanged(&mut self, folder: &str, snapshot: &Snapshot) {
        let _ = (folder, snapshot);
    }

    /// Lists a folder's messages once it has stopped changing, waiting
    /// for that if need be. The default is [`Store::snapshot`].
    fn settled_snapshot(&mut self, folder: &str) -> Result<Snapshot, Self::Error> {
        self.snapshot(folder)
    }

    /// What the snapshot left out for `keys` (their Message-ID and exact
    /// CRLF size), read from the messages themselves, so a copy can be
    /// journaled with what recovery needs to find it again. Stores whose
    /// snapshots carry these return nothing (the default).
    fn describe(
        &mut self,
        _folder: &str,
        _keys: &[MessageKey],
    ) -> Result<Vec<MessageMeta>, Self::Error> {
        Ok(Vec::new())
    }

    /// A fresh key for a message about to be stored, when the store lets
    /// the caller choose (a Maildir unique name): the engine journals it
    /// before writing, so recovery finds the message by that key. Each key
    /// is planned for one message of one batch (a store may trust that no
    /// file has it before its first delivery). `None` (the default) when
    /// the store assigns keys itself (IMAP UIDs).
    fn fresh_key(&mut self) -> Option<MessageKey> {
        None
    }

    /// Pushes the bodies of `keys` into `target`, in any order; a message
    /// that cannot be read gets its own error and the rest go on.
    fn read_bodies(
        &mut self,
        folder: &str,
        keys: &[MessageKey],
        target: &mut dyn BodyTarget,
    ) -> Batch<Keyed<(), Self::Error>, Self::Error>;

    /// Starts storing messages into `folder`: the returned target receives
    /// them; [`Store::finish_writes`] makes them durable and reports their
    /// keys.
    fn begin_writes(&mut self, folder: &str) -> Result<Box<dyn BodyTarget + '_>, Self::Error>;

    /// Completes the messages written since [`Store::begin_writes`]: made
    /// durable, each with its new key (`None` when the store cannot report
    /// it; the engine then searches for it) or its own error.
    fn finish_writes(&mut self) -> Batch<Keyed<Option<MessageKey>, Self::Error>, Self::Error>;

    /// The fingerprints of the messages the last [`Store::finish_writes`]
    /// stored, by their key in the sending store; empty for a store that
    /// does not compute them (the default).
    fn take_fingerprints(&mut self) -> HashMap<MessageKey, crate::Fingerprint> {
        HashMap::new()
    }

    /// Finds a message stored earlier whose new key was not reported (IMAP
    /// without UIDPLUS; a crash between storing and recording): among the
    /// messages that arrived since `since` (the folder's markers before the
    /// store), the one with this Message-ID and size; `None` when none or
    /// several match (RFC 4549 4.2.2.1). A message without a Message-ID
    /// (`message_id` is `None`) is looked for only among the messages
    /// since `since.uid_next`, as the one without a Message-ID of this
    /// size. The default finds nothing.
    fn find_stored(
        &mut self,
        _folder: &str,
        _message_id: Option<&str>,
        _size: u64,
        _since: &Markers,
    ) -> Result<Option<MessageKey>, Self::Error> {
        Ok(None)
    }

    /// Changes flags, one result per change.
    fn set_flags(
        &mut self,
        folder: &str,
        changes: &[FlagChange],
    ) -> Batch<Result<(), Self::Error>, Self::Error>;

    /// Removes messages for good where the store can ([`Capabilities::selective_expunge`]),
    /// else marks them deleted; one result per key.
    fn remove(
        &mut self,
        folder: &str,
        keys: &[MessageKey],
    ) -> Batch<Result<(), Self::Error>, Self::Error>;

    /// Moves messages to another folder keeping their identity; each gets
    /// its new key when the store reports it.
    fn move_messages(
        &mut self,
        from: &str,
        keys: &[MessageKey],
        to: &str,
    ) -> Batch<Result<Option<MessageKey>, Self::Error>, Self::Error>;
}
