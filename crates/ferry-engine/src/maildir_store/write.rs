//! Storing messages: the [`BodyTarget`] that [`Store::begin_writes`]
//! returns, delivering each message push-wise
//! ([`Delivery`](ferry_maildir::Delivery)) through the
//! store's [`DeliveryQueue`](ferry_maildir::DeliveryQueue): worker threads convert, fingerprint, write,
//! fsync and rename, while the sending store reads the next message.
//!
//! Each message's outcome is kept in the store until
//! [`Store::finish_writes`], which fsyncs the directories once for the
//! batch and hands the outcomes over; the writer waits for its folder's
//! deliveries when it is dropped. A message whose delivery failed leaves
//! nothing outside `tmp/`, and nothing in it (the delivery is
//! dropped). A failure that only concerns the message (a bad planned key)
//! is kept for `finish_writes` while its bytes are swallowed, so the
//! sending store goes on with the next; a failure that reaches further
//! (disk full) is also returned as an [`io::Error`] at the next message,
//! so that the sending store stops.
//!
//! [`Store::begin_writes`]: ferry_core::store::Store::begin_writes
//! [`Store::finish_writes`]: ferry_core::store::Store::finish_writes

use std::collections::{BTreeMap, HashMap};
use std::io;

use ferry_core::MessageKey;
use ferry_core::store::{BodyTarget, ErrorClass, Incoming, StoreError};
use ferry_maildir::{Delivered, Finished, NewMessage, Unsynced, unique_key};

use super::{At, Error, MaildirStore};

/// How many deliveries run at once: their fsyncs overlap.
pub(super) const DELIVERY_WORKERS: usize = 16;

/// The message being received.
enum Current {
    /// Handed to the delivery queue.
    Queued,
    /// Its planned key is in the folder already (a replayed delivery): its
    /// bytes are swallowed and the key reported.
    Found { source: MessageKey, key: String },
    /// It failed: its bytes are swallowed and the error reported.
    Failed { source: MessageKey, error: Error },
}

/// A message's outcome, as `finish_writes` reports it.
type Outcome = (MessageKey, Result<Option<MessageKey>, Error>);

/// What the writer remembers of a queued delivery until it comes back.
struct Queued {
    source: MessageKey,
    announced: u64,
    planned: bool,
}

/// The target [`Store::begin_writes`](ferry_core::store::Store::begin_writes)
/// returns.
pub(super) struct Writer<'a> {
    store: &'a mut MaildirStore,
    at: At,
    current: Option<Current>,
    queued: HashMap<u64, Queued>,
    /// The number of the message being received (its queue ticket).
    ticket: u64,
    /// Outcomes by message number, handed to the store in order on drop.
    outcomes: BTreeMap<u64, Outcome>,
    /// A delivery that came back with an error reaching beyond it.
    fatal: Option<String>,
}

impl<'a> Writer<'a> {
    pub(super) fn new(store: &'a mut MaildirStore, at: At) -> Self {
        store.pending.folders.insert(at.name.clone());
        Writer {
            store,
            at,
            current: None,
            queued: HashMap::new(),
            ticket: 0,
            outcomes: BTreeMap::new(),
            fatal: None,
        }
    }

    /// Starts receiving `message`.
    fn start(&mut self, message: &Incoming) -> Result<Current, Error> {
        let source = message.source.clone();
        let key = match &message.planned_key {
            Some(planned) => {
                let key = self.at.name_of(planned)?;
                // A key this store made and no delivery used is in no
                // file; any other may be a replay's, delivered already.
                let unused = self.store.unused_keys.remove(key);
                let found = match unused {
                    true => None,
                    false => self.store.find_cached(&mut self.at, key)?,
                };
                if let Some(entry) = found {
                    let dirty = &mut self.store.pending.dirty;
                    self.at.dir.adopt(&entry).defer(dirty);
                    let key = key.to_string();
                    return Ok(Current::Found { source, key });
                }
                key.to_string()
            }
            None => unique_key(),
        };
        let msg = NewMessage {
            key,
            flags: message.flags.clone(),
            internal_date: message.internal_date,
            into_new: true,
        };
        ferry_maildir::MaildirName::check_key(&msg.key).map_err(|bad| {
            let e = ferry_maildir::Error::BadKey {
                key: msg.key.clone(),
                reason: bad.reason,
            };
            self.store.fail(&self.at.name, Some(&msg.key), e)
        })?;
        self.queue(source, msg, message)
    }

    /// Hands the delivery of `msg` to the store's queue (a worker creates
    /// its `tmp/` file).
    fn queue(
        &mut self,
        source: MessageKey,
        msg: NewMessage,
        message: &Incoming,
    ) -> Result<Current, Error> {
        let ticket = self.ticket;
        let folder = self.at.dir.clone();
        self.store.delivery_queue()?.begin(ticket, &folder, msg);
        let queued = Queued {
            source,
            announced: message.size,
            planned: message.planned_key.is_some(),
        };
        self.queued.insert(ticket, queued);
        Ok(Current::Queued)
    }

    /// Records the outcome of a delivery that came back from the queue.
    fn settle(&mut self, finished: Finished) {
        let Some(queued) = self.queued.remove(&finished.ticket) else {
            return;
        };
        let result = match finished.result {
            Err(ferry_maildir::Error::Abandoned { .. }) => Err(Error::Unfinished {
                folder: self.at.name.clone(),
                source_key: queued.source.clone(),
            }),
            // Not begun (its tmp/ file could not be made): its own error,
            // never "delivered before".
            Err(e) if !finished.begun => {
                Err(self.store.fail(&self.at.name, Some(&finished.key), e))
            }
            outcome => self.place(&finished.key, outcome, &queued),
        };
        if let Err(error) = &result {
            if self.fatal.is_none() && fatal(error).is_err() {
                self.fatal = Some(error.to_string());
            }
        }
        let result = result.map(|key| Some(MessageKey::Name(key.into())));
        self.outcomes
            .insert(finished.ticket, (queued.source, result));
    }

    /// The key of a finished delivery, its directory left for the batch's
    /// fsync; a planned name already taken is the same message delivered
    /// before.
    fn place(
        &mut self,
        key: &str,
        outcome: ferry_maildir::Result<Unsynced<Delivered>>,
        queued: &Queued,
    ) -> Result<String, Error> {
        match outcome {
            Ok(done) => {
                let delivered = done.defer(&mut self.store.pending.dirty);
                if delivered.crlf_size != queued.announced {
                    tracing::warn!(
                        folder = %self.at.name, %key, announced = queued.announced,
                        received = delivered.crlf_size,
                        "the message's size differs from the one announced"
                    );
                }
                let source = queued.source.clone();
                let fingerprints = &mut self.store.pending.fingerprints;
                fingerprints.insert(source, delivered.fingerprint);
                self.store
                    .cache
                    .set(&self.at.name, key, Some(delivered.entry));
                Ok(key.to_string())
            }
            Err(ferry_maildir::Error::Exists { .. }) if queued.planned => {
                self.store.rescan(&mut self.at)?;
                if let Some(entry) = self.store.find_cached(&mut self.at, key)? {
                    self.at
                        .dir
                        .adopt(&entry)
                        .defer(&mut self.store.pending.dirty);
                }
                Ok(key.to_string())
            }
            Err(e) => Err(self.store.fail(&self.at.name, Some(key), e)),
        }
    }

    /// Settles the deliveries that came back so far (`wait`: all of them).
    fn collect(&mut self, wait: bool) {
        let Some(queue) = self.store.queue.as_mut() else {
            return;
        };
        let finished = match wait {
            true => queue.wait(),
            false => queue.finished(),
        };
        for one in finished {
            self.settle(one);
        }
    }

    /// Ends the current message: queued, it is finished in the background;
    /// otherwise its outcome is recorded now.
    fn complete(&mut self, current: Current) {
        let outcome = match current {
            Current::Queued => {
                if let Some(queue) = self.store.queue.as_mut() {
                    queue.end();
                }
                return;
            }
            Current::Found { source, key } => (source, Ok(Some(MessageKey::Name(key.into())))),
            Current::Failed { source, error } => (source, Err(error)),
        };
        self.outcomes.insert(self.ticket, outcome);
    }

    /// Gives up a message begun and not ended.
    fn abandon(&mut self) {
        match self.current.take() {
            Some(Current::Queued) => {
                if let Some(queue) = self.store.queue.as_mut() {
                    queue.abandon();
                }
            }
            Some(other) => self.complete(other),
            None => {}
        }
    }

    /// An error for the sending store when a message failed in a way that
    /// reaches beyond it.
    fn stop_if_fatal(&self) -> io::Result<()> {
        if let Some(reason) = &self.fatal {
            return Err(io::Error::other(reason.clone()));
        }
        match &self.current {
            Some(Current::Failed { error, .. }) => fatal(error),
            _ => Ok(()),
        }
    }
}

/// `Err` for an error that reaches beyond its message.
fn fatal(error: &Error) -> io::Result<()> {
    if error.class() == ErrorClass::Message {
        Ok(())
    } else {
        Err(io::Error::other(error.to_string()))
    }
}

impl BodyTarget for Writer<'_> {
    fn begin(&mut self, message: &Incoming) -> io::Result<()> {
        self.abandon();
        self.collect(false);
        self.ticket += 1;
        self.stop_if_fatal()?;
        let current = self.start(message).unwrap_or_else(|error| Current::Failed {
            source: message.source.clone(),
            error,
        });
        self.current = Some(current);
        self.stop_if_fatal()
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self.current {
            Some(Current::Queued) => {
                if let Some(queue) = self.store.queue.as_mut() {
                    queue.write(data);
                }
                Ok(())
            }
            Some(_) => self.stop_if_fatal(),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write without begin",
            )),
        }
    }

    fn end(&mut self) -> io::Result<()> {
        let Some(current) = self.current.take() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "end without begin",
            ));
        };
        let failed = match &current {
            Current::Failed { error, .. } => fatal(error),
            _ => Ok(()),
        };
        self.complete(current);
        failed
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        self.abandon();
        self.collect(true);
        let outcomes = std::mem::take(&mut self.outcomes);
        self.store.pending.results.extend(outcomes.into_values());
    }
}
