//! Writing messages: a streamed APPEND per message, completions collected
//! later, so that several APPENDs are in flight at once.
//!
//! [`AppendTarget::begin`] sends `APPEND <folder> (<flags>) "<date>"
//! {<size>}` (`{<size>+}` with LITERAL+, else after the server's
//! continuation), `write` streams the bytes into the literal, `end` checks
//! that exactly `size` bytes came and ends the command. Its completion is
//! read when too many are in flight, else by [`Store::finish_writes`]:
//! APPENDUID gives the new key; without UIDPLUS the key is `None` (an
//! APPENDUID from a server that does not advertise UIDPLUS is not trusted)
//! and [`ImapStore::find_appended`] finds the message by Message-ID and
//! size.
//!
//! A literal cannot be taken back: a message whose bytes stop short (its
//! source failed, or the target was dropped mid-message) leaves the server
//! waiting, so the session, and with it the store, is unusable afterwards.
//! Every message begun still gets its own result from `finish_writes`, so
//! the APPENDs that completed before are known.
//!
//! [`Store::finish_writes`]: ferry_core::store::Store::finish_writes

use super::{ImapStore, ImapStoreError, Refusal, Result, imap_flags, uid_key};
use ferry_core::MessageKey;
use ferry_core::store::{BodyTarget, Incoming, Keyed};
use ferry_imap::proto::command::uid_set;
use ferry_imap::{AppendHeader, AppendResult};
use std::collections::VecDeque;
use std::io;

/// How many APPENDs may await their completion at once.
const WINDOW: usize = 32;

type WriteResult = Keyed<Option<MessageKey>, ImapStoreError>;

/// The APPENDs since [`Store::begin_writes`](ferry_core::store::Store::begin_writes).
#[derive(Debug, Default)]
pub(super) struct Writes {
    /// The target folder: local and wire name.
    folder: String,
    wire: String,
    /// Finished messages, in the order they finished.
    done: Vec<WriteResult>,
    /// Sent and ended, completion not read yet: (source, tag).
    in_flight: VecDeque<(MessageKey, String)>,
    /// The message being streamed.
    current: Current,
}

/// The message being streamed.
#[derive(Debug, Default)]
enum Current {
    /// None.
    #[default]
    Idle,
    /// Its APPEND is open: (source, tag).
    Open(MessageKey, String),
    /// It was refused at `begin`; its bytes are dropped.
    Dropped,
}

impl Writes {
    pub(super) fn start(&mut self, folder: &str, wire: String) {
        self.folder = folder.to_string();
        self.wire = wire;
    }

    /// Whether no APPEND of this session waits for its completion (so the
    /// session can be replaced without losing one).
    pub(super) fn settled(&self) -> bool {
        self.in_flight.is_empty() && !matches!(self.current, Current::Open(..))
    }
}

/// The [`BodyTarget`] of an [`ImapStore`]: every message becomes an APPEND.
pub(super) struct AppendTarget<'s> {
    store: &'s mut ImapStore,
}

impl<'s> AppendTarget<'s> {
    pub(super) fn new(store: &'s mut ImapStore) -> Self {
        AppendTarget { store }
    }
}

impl BodyTarget for AppendTarget<'_> {
    fn begin(&mut self, message: &Incoming) -> io::Result<()> {
        // A previous message left open is ended here; if that fails, the
        // store is broken and this message fails below.
        let _ = self.store.settle_current();
        if let Err(error) = self.store.alive() {
            let text = error.to_string();
            self.store.writes.current = Current::Dropped;
            self.store
                .writes
                .done
                .push((message.source.clone(), Err(error)));
            return Err(io::Error::other(text));
        }
        self.store.begin_append(message)
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match &self.store.writes.current {
            Current::Open(..) => self.store.write_literal(data),
            Current::Dropped => Ok(()),
            Current::Idle => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "message bytes written before begin",
            )),
        }
    }

    fn end(&mut self) -> io::Result<()> {
        match std::mem::take(&mut self.store.writes.current) {
            Current::Open(source, tag) => self.store.end_literal(source, tag),
            Current::Dropped => Ok(()),
            Current::Idle => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a message ended before it began",
            )),
        }
    }
}

impl Drop for AppendTarget<'_> {
    fn drop(&mut self) {
        // A message left open is completed if all its bytes came; if not,
        // it cannot be withdrawn and the session is lost.
        let _ = self.store.settle_current();
    }
}

impl ImapStore {
    fn begin_append(&mut self, message: &Incoming) -> io::Result<()> {
        let header = AppendHeader {
            mailbox: self.writes.wire.clone(),
            flags: imap_flags(&message.flags),
            internal_date: message.internal_date,
        };
        match self.session.begin_append(&header, message.size) {
            Ok(tag) => {
                self.writes.current = Current::Open(message.source.clone(), tag);
                Ok(())
            }
            Err(e) => {
                let error = self.append_error(&message.source, e);
                let text = error.to_string();
                self.writes.current = Current::Dropped;
                self.writes.done.push((message.source.clone(), Err(error)));
                Err(io::Error::other(text))
            }
        }
    }

    /// The next bytes of the open message; a failure (the connection, or
    /// more bytes than announced) loses the session.
    fn write_literal(&mut self, data: &[u8]) -> io::Result<()> {
        let Err(e) = self.session.write_literal(data) else {
            return Ok(());
        };
        let error = ImapStoreError::Session(e);
        self.note(&error);
        Err(io::Error::other(format!(
            "writing a message into {:?}: {error}",
            self.writes.folder
        )))
    }

    /// Ends the open message's APPEND (a short one loses the session) and
    /// reads completions while too many are in flight.
    fn end_literal(&mut self, source: MessageKey, tag: String) -> io::Result<()> {
        if let Err(e) = self.session.end_literal() {
            let error = ImapStoreError::Session(e);
            let text = error.to_string();
            self.note(&error);
            self.writes.done.push((source, Err(error)));
            return Err(io::Error::other(text));
        }
        self.writes.in_flight.push_back((source, tag));
        while self.writes.in_flight.len() > WINDOW {
            self.collect_oldest()?;
        }
        Ok(())
    }

    /// A message still open when the next begins, or when the target goes.
    fn settle_current(&mut self) -> io::Result<()> {
        match std::mem::take(&mut self.writes.current) {
            Current::Open(source, tag) => self.end_literal(source, tag),
            Current::Dropped | Current::Idle => Ok(()),
        }
    }

    /// Reads the completion of the oldest APPEND in flight; an error that
    /// lost the session is returned too.
    fn collect_oldest(&mut self) -> io::Result<()> {
        let Some((source, tag)) = self.writes.in_flight.pop_front() else {
            return Ok(());
        };
        let result = self.collect(&source, &tag);
        let lost = match &result {
            Err(e) if e.ends_session() => Some(io_error(e)),
            _ => None,
        };
        self.writes.done.push((source, result));
        lost.map_or(Ok(()), Err)
    }

    /// The result of one APPEND; on a broken session only a completion
    /// that arrived before the failure is read.
    fn collect(&mut self, source: &MessageKey, tag: &str) -> Result<Option<MessageKey>> {
        let completed = match self.alive() {
            Ok(()) => self.session.finish_append(tag),
            Err(unusable) => match self.session.take_completion(tag) {
                Some(completion) => completion.map(|c| AppendResult::from_completion(&c)),
                None => return Err(unusable),
            },
        };
        ferry_core::crashpoint::step("imap append");
        let trusted = self.session.has_capability("UIDPLUS");
        let key = |a: Option<AppendResult>| a.filter(|_| trusted).and_then(new_key);
        completed.map(key).map_err(|e| {
            let error = self.append_error(source, e);
            self.note(&error);
            error
        })
    }

    fn append_error(&self, source: &MessageKey, error: ferry_imap::Error) -> ImapStoreError {
        match Refusal::from_imap(error) {
            Ok(refusal) => {
                ImapStoreError::message_refused(&self.writes.folder, Some(source), refusal)
            }
            Err(other) => ImapStoreError::Session(other),
        }
    }

    /// [`Store::finish_writes`](ferry_core::store::Store::finish_writes):
    /// a result for every message begun since `begin_writes`, also when
    /// the session was lost on the way.
    pub(super) fn collect_writes(&mut self) -> Vec<WriteResult> {
        // The target's drop settled the last message already.
        let _ = self.settle_current();
        while let Some((source, tag)) = self.writes.in_flight.pop_front() {
            let result = self.collect(&source, &tag);
            self.writes.done.push((source, result));
        }
        std::mem::take(&mut self.writes).done
    }

    /// The message APPENDed to `folder` at or after `uid_next_before` (its
    /// UIDNEXT before the APPEND) with this Message-ID (or without any, for
    /// `None`) and size; `None` when none or several match (RFC 4549
    /// 4.2.2.1). How a new key is found without UIDPLUS, or after a crash.
    pub fn find_appended(
        &mut self,
        folder: &str,
        uid_next_before: u32,
        message_id: Option<&str>,
        size: u64,
    ) -> Result<Option<MessageKey>> {
        self.guard(|s| s.search_appended(folder, uid_next_before, message_id, size))
    }

    fn search_appended(
        &mut self,
        folder: &str,
        from: u32,
        message_id: Option<&str>,
        size: u64,
    ) -> Result<Option<MessageKey>> {
        self.refresh(folder)?;
        let hits = match message_id {
            Some(id) => self.session.search_message_id(from, id),
            None => self.session.search_without_message_id(from),
        }
        .map_err(|e| ImapStoreError::folder(folder, e))?;
        if hits.is_empty() {
            return Ok(None);
        }
        let (fetched, _) = self
            .session
            .uid_fetch(&uid_set(&hits), "UID RFC822.SIZE", None)
            .map_err(|e| ImapStoreError::folder(folder, e))?;
        let sized: Vec<u32> = fetched
            .iter()
            .filter(|f| f.size.map(u64::from) == Some(size))
            .filter_map(|f| f.uid)
            .collect();
        Ok(match sized[..] {
            [uid] => uid_key(uid),
            _ => None,
        })
    }

    /// Makes the session see messages that arrived since it selected
    /// `folder` (NOOP), or selects it.
    fn refresh(&mut self, folder: &str) -> Result<()> {
        let wire = self.wire(folder)?;
        if self.session.selected() == Some(wire.as_str()) {
            self.session.noop().map_err(ImapStoreError::Session)?;
        } else {
            self.select(folder, &wire)?;
        }
        Ok(())
    }
}

fn new_key(appended: AppendResult) -> Option<MessageKey> {
    uid_key(appended.uid)
}

fn io_error(error: &ImapStoreError) -> io::Error {
    io::Error::other(error.to_string())
}
