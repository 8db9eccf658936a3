//! Reading bodies over several connections: a large read is cut into
//! pieces of consecutive UIDs, which the helper sessions (see module
//! `ahead`) and the main session fetch side by side, so that a distant
//! server, whose single connection is bounded by round trips and its TCP
//! window, sends over all of them at once.
//!
//! The main session fetches the metadata of the whole read first (as a
//! one-connection read does), so every piece comes with its messages' flags,
//! dates and sizes, and a helper only pipelines body FETCHes. The
//! destination takes one message at a time, from the calling thread: a
//! helper therefore reads each message whole into memory and passes it
//! over a bounded channel. Helpers get only messages up to
//! [`HELPER_MAX_SIZE`], so memory stays bounded ([`WAITING`] messages in
//! the channel and one being read per helper); larger ones the main session
//! streams, first, and then it works through the pieces no helper has
//! started, handing over the helpers' messages between two of its own.
//!
//! A helper's failure costs nothing but time: every message no helper
//! delivered (gone, refused, a helper whose connection broke) is read again
//! on the main session at the end, which gives it its result as a
//! one-connection read would. A helper refuses a folder whose UIDVALIDITY
//! is not the one the main session's snapshot saw.

use super::bodies::ItemResult;
use super::{ImapStore, ImapStoreError, Result, uid_of};
use ferry_core::store::{BodyTarget, Incoming};
use std::collections::HashSet;
use std::io;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};

/// Messages per piece of work.
const PIECE: usize = 250;

/// The largest message a helper fetches (it holds it whole); larger ones
/// are left to the main session, which streams them.
pub(super) const HELPER_MAX_SIZE: u64 = 1 << 20;

/// Whole messages that may wait for the calling thread.
const WAITING: usize = 16;

/// What a helper sends the calling thread.
pub(super) enum FromHelper {
    /// A message read whole, in the pieces it arrived in (each at most a
    /// socket read: no large allocation, which would make the allocator
    /// keep freed memory).
    Message(Incoming, Vec<Vec<u8>>),
    /// A piece is finished (or was dropped unfinished).
    Finished,
}

/// One piece of a read, for a helper: fetch these UIDs whole and send them
/// on. Dropped (done, failed, or never started), it reports
/// [`FromHelper::Finished`], unless the main session took it back.
pub(super) struct Piece {
    messages: Vec<Incoming>,
    /// The UIDVALIDITY the main session's snapshot saw.
    pub(super) validity: Option<u32>,
    sender: Option<SyncSender<FromHelper>>,
}

impl Piece {
    /// Fetches the piece on a helper's `store`, sending each message whole.
    pub(super) fn run(&mut self, store: &mut ImapStore, folder: &str) -> Result<()> {
        let messages = std::mem::take(&mut self.messages);
        let Some(sender) = &self.sender else {
            return Ok(());
        };
        match self.validity {
            Some(validity) => store.validities.insert(folder.to_string(), validity),
            None => store.validities.remove(folder),
        };
        let mut target = Forward {
            sender,
            current: None,
        };
        store.guard(|s| {
            s.open(folder)?;
            s.pump_bodies(folder, messages, &mut target).map(drop)
        })
    }

    /// Takes the piece back for the main session: its messages, and no
    /// report.
    fn take_back(mut self) -> Vec<Incoming> {
        self.sender = None;
        std::mem::take(&mut self.messages)
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            // The calling thread may have given up (its read failed).
            drop(sender.send(FromHelper::Finished));
        }
    }
}

/// A helper's destination: collects each message and sends it whole.
struct Forward<'s> {
    sender: &'s SyncSender<FromHelper>,
    current: Option<(Incoming, Vec<Vec<u8>>)>,
}

impl BodyTarget for Forward<'_> {
    fn begin(&mut self, message: &Incoming) -> io::Result<()> {
        // The size here is the literal's, whatever RFC822.SIZE claimed: a
        // larger message is left to the main session, which streams it.
        if message.size > HELPER_MAX_SIZE {
            self.current = None;
            return Err(io::Error::other("too large to hold whole"));
        }
        self.current = Some((message.clone(), Vec::new()));
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some((_, body)) = &mut self.current {
            body.push(data.to_vec());
        }
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        let Some((incoming, body)) = self.current.take() else {
            return Ok(());
        };
        self.sender
            .send(FromHelper::Message(incoming, body))
            .map_err(|_| io::Error::other("the read this message was for has ended"))
    }
}

/// The calling thread's side: the helpers' messages, passed on to the
/// destination, and what came of them.
struct Gather {
    receiver: Receiver<FromHelper>,
    /// Pieces given to helpers and not yet finished.
    outstanding: usize,
    results: Vec<ItemResult>,
}

impl Gather {
    fn handle(&mut self, received: FromHelper, target: &mut dyn BodyTarget) {
        match received {
            FromHelper::Finished => self.outstanding = self.outstanding.saturating_sub(1),
            FromHelper::Message(incoming, body) => {
                let key = incoming.source.clone();
                let stored = target
                    .begin(&incoming)
                    .and_then(|()| body.iter().try_for_each(|piece| target.write(piece)))
                    .and_then(|()| target.end())
                    .map_err(|source| ImapStoreError::Target {
                        key: key.clone(),
                        source,
                    });
                self.results.push((key, stored));
            }
        }
    }

    /// Passes on what has arrived, without waiting.
    fn pass_on(&mut self, target: &mut dyn BodyTarget) {
        loop {
            match self.receiver.try_recv() {
                Ok(received) => self.handle(received, target),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    /// Passes on everything until every helper's piece is finished.
    fn wait_for_helpers(&mut self, target: &mut dyn BodyTarget) {
        while self.outstanding > 0 {
            match self.receiver.recv() {
                Ok(received) => self.handle(received, target),
                Err(_) => return,
            }
        }
    }
}

/// The main session's destination while helpers deliver too: before each
/// of its own messages, the helpers' waiting ones go first.
struct Merge<'g, 't> {
    gather: &'g mut Gather,
    inner: &'t mut dyn BodyTarget,
}

impl BodyTarget for Merge<'_, '_> {
    fn begin(&mut self, message: &Incoming) -> io::Result<()> {
        self.gather.pass_on(self.inner);
        self.inner.begin(message)
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.inner.write(data)
    }

    fn end(&mut self) -> io::Result<()> {
        self.inner.end()
    }
}

impl ImapStore {
    /// Whether a read of `count` messages is worth spreading.
    pub(super) fn spreads(&self, count: usize) -> bool {
        self.ahead.is_some() && count > PIECE
    }

    /// Reads `messages` of the selected `folder` over the main session and
    /// the helpers (see the module documentation).
    pub(super) fn read_spread(
        &mut self,
        folder: &str,
        messages: Vec<Incoming>,
        target: &mut dyn BodyTarget,
    ) -> Result<Vec<ItemResult>> {
        let Some(mut ahead) = self.ahead.take() else {
            return self.pump_bodies(folder, messages, target);
        };
        // No size (a server that did not say) counts as large.
        let (large, small): (Vec<_>, Vec<_>) =
            (messages.into_iter()).partition(|m| m.size == 0 || m.size > HELPER_MAX_SIZE);
        let (sender, receiver) = sync_channel(WAITING);
        let validity = self.validities.get(folder).copied();
        let numbers: Vec<u64> = small
            .chunks(PIECE)
            .map(|chunk| {
                let piece = Piece {
                    messages: chunk.to_vec(),
                    validity,
                    sender: Some(sender.clone()),
                };
                ahead.request_piece(folder, piece)
            })
            .collect();
        drop(sender);
        let mut gather = Gather {
            receiver,
            outstanding: numbers.len(),
            results: Vec::new(),
        };
        let mut read_here =
            |store: &mut ImapStore, messages: Vec<Incoming>, gather: &mut Gather| {
                let mut merge = Merge {
                    gather,
                    inner: target,
                };
                let read = store.pump_bodies(folder, messages, &mut merge);
                gather.pass_on(target);
                read
            };
        let mut results = Vec::new();
        let mut here = read_here(self, large, &mut gather).map(|read| results.extend(read));
        for &number in &numbers {
            let Some(piece) = ahead.withdraw_piece(folder, number) else {
                continue;
            };
            gather.outstanding -= 1;
            let messages = piece.take_back();
            if here.is_ok() {
                here = read_here(self, messages, &mut gather).map(|read| results.extend(read));
            }
        }
        self.ahead = Some(ahead);
        here?;
        gather.wait_for_helpers(target);
        results.append(&mut gather.results);
        let done: HashSet<u32> = results.iter().map(|(key, _)| uid_of(key)).collect();
        let left: Vec<Incoming> = (small.into_iter())
            .filter(|m| !done.contains(&uid_of(&m.source)))
            .collect();
        if !left.is_empty() {
            tracing::debug!("{} messages of {folder:?} left by helpers", left.len());
            results.extend(self.pump_bodies(folder, left, target)?);
        }
        Ok(results)
    }
}
