//! Storing messages: the [`BodyTarget`] that [`Store::begin_writes`]
//! returns, delivering each message push-wise ([`Delivery`]).
//!
//! Each message's outcome is kept in the store until
//! [`Store::finish_writes`], which fsyncs the directories once for the
//! batch and hands the outcomes over. A message whose delivery failed
//! leaves nothing outside `tmp/`, and nothing in it (the [`Delivery`] is
//! dropped). A failure that only concerns the message (a bad planned key)
//! is kept for `finish_writes` while its bytes are swallowed, so the
//! sending store goes on with the next; a failure that reaches further
//! (disk full) is also returned as an [`io::Error`] so that the sending
//! store stops.
//!
//! [`Store::begin_writes`]: ferry_core::store::Store::begin_writes
//! [`Store::finish_writes`]: ferry_core::store::Store::finish_writes

use std::io;

use ferry_core::MessageKey;
use ferry_core::store::{BodyTarget, ErrorClass, Incoming, StoreError};
use ferry_maildir::{Delivery, NewMessage, unique_key};

use super::{At, Error, MaildirStore};

/// The message being received.
enum Current {
    /// Being delivered.
    Writing {
        source: MessageKey,
        delivery: Box<Delivery>,
        announced: u64,
        planned: bool,
    },
    /// Its planned key is in the folder already (a replayed delivery): its
    /// bytes are swallowed and the key reported.
    Found { source: MessageKey, key: String },
    /// It failed: its bytes are swallowed and the error reported.
    Failed { source: MessageKey, error: Error },
}

/// The target [`Store::begin_writes`](ferry_core::store::Store::begin_writes)
/// returns.
pub(super) struct Writer<'a> {
    store: &'a mut MaildirStore,
    at: At,
    current: Option<Current>,
}

impl<'a> Writer<'a> {
    pub(super) fn new(store: &'a mut MaildirStore, at: At) -> Self {
        store.pending.folders.insert(at.name.clone());
        Writer {
            store,
            at,
            current: None,
        }
    }

    /// Starts receiving `message`.
    fn start(&mut self, message: &Incoming) -> Result<Current, Error> {
        let source = message.source.clone();
        let key = match &message.planned_key {
            Some(planned) => {
                let key = self.at.name_of(planned)?;
                if let Some(entry) = self.store.find_cached(&mut self.at, key)? {
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
        let delivery = self.at.dir.begin_delivery(&msg);
        let delivery = delivery.map_err(|e| self.store.fail(&self.at.name, Some(&msg.key), e))?;
        Ok(Current::Writing {
            source,
            delivery: Box::new(delivery),
            announced: message.size,
            planned: message.planned_key.is_some(),
        })
    }

    /// Completes `current`: its outcome.
    fn complete(&mut self, current: Current) -> (MessageKey, Result<Option<MessageKey>, Error>) {
        match current {
            Current::Writing {
                source,
                delivery,
                announced,
                planned,
            } => {
                let result = self.finish(*delivery, announced, planned);
                (source, result.map(|key| Some(MessageKey::Name(key))))
            }
            Current::Found { source, key } => (source, Ok(Some(MessageKey::Name(key)))),
            Current::Failed { source, error } => (source, Err(error)),
        }
    }

    /// Renames the delivery into place; a planned name already taken is the
    /// same message delivered before.
    fn finish(
        &mut self,
        delivery: Delivery,
        announced: u64,
        planned: bool,
    ) -> Result<String, Error> {
        let key = delivery.message().key.clone();
        match delivery.finish() {
            Ok(done) => {
                let delivered = done.defer(&mut self.store.pending.dirty);
                if delivered.crlf_size != announced {
                    tracing::warn!(
                        folder = %self.at.name, %key, announced, received = delivered.crlf_size,
                        "the message's size differs from the one announced"
                    );
                }
                self.store
                    .cache
                    .set(&self.at.name, &key, Some(delivered.entry));
                Ok(key)
            }
            Err(ferry_maildir::Error::Exists { .. }) if planned => {
                self.store.rescan(&mut self.at)?;
                if let Some(entry) = self.store.find_cached(&mut self.at, &key)? {
                    self.at
                        .dir
                        .adopt(&entry)
                        .defer(&mut self.store.pending.dirty);
                }
                Ok(key)
            }
            Err(e) => Err(self.store.fail(&self.at.name, Some(&key), e)),
        }
    }

    /// Records the outcome of a message begun and not ended.
    fn abandon(&mut self) {
        let Some(current) = self.current.take() else {
            return;
        };
        let outcome = match current {
            Current::Writing { source, .. } => {
                let folder = self.at.name.clone();
                let source_key = source.clone();
                (source, Err(Error::Unfinished { folder, source_key }))
            }
            other => self.complete(other),
        };
        self.store.pending.results.push(outcome);
    }

    /// An error for the sending store when the current message failed in a
    /// way that reaches beyond it.
    fn stop_if_fatal(&self) -> io::Result<()> {
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
        let current = self.start(message).unwrap_or_else(|error| Current::Failed {
            source: message.source.clone(),
            error,
        });
        self.current = Some(current);
        self.stop_if_fatal()
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(current) = self.current.as_mut() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write without begin",
            ));
        };
        if let Current::Writing {
            source, delivery, ..
        } = current
        {
            if let Err(e) = delivery.write(data) {
                let key = delivery.message().key.clone();
                let error = self.store.fail(&self.at.name, Some(&key), e);
                let source = source.clone();
                self.current = Some(Current::Failed { source, error });
            }
        }
        self.stop_if_fatal()
    }

    fn end(&mut self) -> io::Result<()> {
        let Some(current) = self.current.take() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "end without begin",
            ));
        };
        let (source, result) = self.complete(current);
        let stop = result.as_ref().err().map_or(Ok(()), fatal);
        self.store.pending.results.push((source, result));
        stop
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        self.abandon();
    }
}
