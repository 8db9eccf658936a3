//! Reading bodies: from the socket into a [`BodyTarget`], chunk by chunk.
//!
//! First the metadata of the asked UIDs (flags, INTERNALDATE, size) in a
//! few commands; then one `UID FETCH <uid> (UID BODY.PEEK[])` per message,
//! pipelined in a window. A server may run pipelined commands in parallel
//! (Dovecot does: the FETCH responses of several commands arrive before
//! the first completion), so a body is attributed by the UID the server
//! puts before its literal, and falls back to the command being waited for
//! only when no UID precedes it. Either way the [`BodyPump`] knows the
//! message before the first byte, begins the target's message as the
//! literal starts, and ends it only after the parsed FETCH confirmed the
//! UID. A command's completion comes after all its responses, so when it
//! completes, its message's result is known.
//!
//! Small bodies (below the framer's divert threshold) arrive in memory with
//! their FETCH and are pushed to the target from there. A message that is
//! gone (expunged by another client meanwhile: no FETCH, or a NO) is that
//! message's error; the others arrive. A key named twice is read once.

use super::{
    ImapStore, ImapStoreError, Refusal, Result, UIDS_PER_COMMAND, split_keys, uid_key, uid_of,
};
use ferry_core::MessageKey;
use ferry_core::store::{BodyTarget, Incoming, Keyed};
use ferry_imap::Session;
use ferry_imap::proto::command::{Command, uid_set};
use ferry_imap::proto::framing::{KeepInMemory, LiteralSink};
use ferry_imap::proto::response::{Fetch, Untagged};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io;

/// How many body FETCHes (a few dozen bytes each) await their response at
/// once: with small messages and a server 25 ms away, 32 leave the line
/// idle between round trips.
const BODY_WINDOW: usize = 128;

/// What is fetched before the bodies.
const META_ITEMS: &str = "UID FLAGS INTERNALDATE RFC822.SIZE";

pub(super) type ItemResult = Keyed<(), ImapStoreError>;

impl ImapStore {
    /// [`Store::read_bodies`](ferry_core::store::Store::read_bodies).
    pub(super) fn read(
        &mut self,
        folder: &str,
        keys: &[MessageKey],
        target: &mut dyn BodyTarget,
    ) -> Result<Vec<ItemResult>> {
        self.open(folder)?;
        let (mut uids, mut results) = split_keys(keys);
        let mut seen = HashSet::with_capacity(uids.len());
        uids.retain(|uid| seen.insert(*uid));
        results.extend(self.read_uids(folder, &uids, target)?);
        Ok(results)
    }

    /// Reads `uids` (distinct) of the selected `folder`, over the helper
    /// sessions too when there are enough.
    pub(super) fn read_uids(
        &mut self,
        folder: &str,
        uids: &[u32],
        target: &mut dyn BodyTarget,
    ) -> Result<Vec<ItemResult>> {
        let mut meta = self.fetch_meta(folder, uids)?;
        let mut results = Vec::new();
        let mut present = Vec::with_capacity(uids.len());
        for &uid in uids {
            match (meta.remove(&uid), uid_key(uid)) {
                (Some(incoming), _) => present.push(incoming),
                (None, Some(key)) => results.push((key.clone(), Err(vanished(folder, key)))),
                (None, None) => {}
            }
        }
        let read = match self.spreads(present.len()) {
            true => self.read_spread(folder, present, target)?,
            false => self.pump_bodies(folder, present, target)?,
        };
        results.extend(read);
        Ok(results)
    }

    /// The flags, dates and sizes of `uids`, as the messages to deliver:
    /// one command per [`UIDS_PER_COMMAND`] UIDs, pipelined.
    fn fetch_meta(&mut self, folder: &str, uids: &[u32]) -> Result<HashMap<u32, Incoming>> {
        let mut meta = HashMap::with_capacity(uids.len());
        let commands = uids.chunks(UIDS_PER_COMMAND).map(|chunk| {
            Command::new("UID FETCH")
                .raw(&uid_set(chunk))
                .raw(&format!("({META_ITEMS})"))
        });
        let mut handler = |u: Untagged| match u {
            Untagged::Fetch(fetch) if fetch.uid.is_some() => {
                // An unsolicited FETCH (another client's flag change) has
                // no size: it does not replace the answer.
                let answer = fetch.size.is_some();
                if let Some((uid, incoming)) = incoming(fetch) {
                    if answer || !meta.contains_key(&uid) {
                        meta.insert(uid, incoming);
                    }
                }
                None
            }
            other => Some(other),
        };
        self.session
            .pipeline(
                commands,
                |session, command| session.send(command),
                |session, tag| session.wait(tag, &mut handler, &mut KeepInMemory),
            )
            .map_err(|e| ImapStoreError::folder(folder, e))?;
        Ok(meta)
    }

    /// One pipelined body FETCH per message, each pumped into `target`.
    /// When the session is lost on the way, the messages delivered before
    /// keep their results (their bytes reached the target) and the others
    /// get the failure.
    pub(super) fn pump_bodies(
        &mut self,
        folder: &str,
        messages: Vec<Incoming>,
        target: &mut dyn BodyTarget,
    ) -> Result<Vec<ItemResult>> {
        let pump = RefCell::new(BodyPump::new(folder, target));
        let results = self
            .session
            .pipeline_in(
                BODY_WINDOW,
                messages,
                |session, incoming| Ok(send_body(session, &pump, incoming)),
                |session, (tag, key)| Ok(receive(session, &pump, tag.as_deref(), key)),
            )
            .map_err(ImapStoreError::Session)?;
        if let Some(reason) = pump.into_inner().lost {
            self.broken.get_or_insert(reason);
        }
        Ok(results)
    }
}

/// Sends the body FETCH of `incoming`, unless the session is lost.
fn send_body(
    session: &mut Session,
    pump: &RefCell<BodyPump<'_, '_>>,
    incoming: Incoming,
) -> (Option<String>, MessageKey) {
    let key = incoming.source.clone();
    if pump.borrow().lost.is_some() {
        return (None, key);
    }
    match session.send(body_command(&key)) {
        Ok(tag) => {
            pump.borrow_mut().asked.insert(uid_of(&key), incoming);
            (Some(tag), key)
        }
        Err(e) => {
            pump.borrow_mut().lose(&e);
            (None, key)
        }
    }
}

fn body_command(key: &MessageKey) -> Command {
    Command::new("UID FETCH")
        .raw(&uid_of(key).to_string())
        .raw("(UID BODY.PEEK[])")
}

/// A FETCH of [`META_ITEMS`] as the message to deliver.
fn incoming(fetch: Fetch) -> Option<(u32, Incoming)> {
    let uid = fetch.uid?;
    let flags = super::fetched_flags(&fetch);
    let incoming = Incoming {
        source: uid_key(uid)?,
        flags,
        internal_date: fetch
            .internal_date
            .as_deref()
            .and_then(ferry_core::date::parse_imap_date),
        size: fetch.size.map(u64::from).unwrap_or_default(),
        message_id: None,
        planned_key: None,
    };
    Some((uid, incoming))
}

fn vanished(folder: &str, key: MessageKey) -> ImapStoreError {
    ImapStoreError::Vanished {
        folder: folder.to_string(),
        key,
    }
}

/// The server broke the protocol: the session cannot be trusted further.
fn broken(what: String) -> ferry_imap::Error {
    ferry_imap::Error::Protocol {
        what,
        received: String::new(),
    }
}

/// Waits for the body command `tag` of message `key`; its result. A
/// command that was not sent, or a session lost, gives the failure.
fn receive(
    session: &mut Session,
    pump: &RefCell<BodyPump<'_, '_>>,
    tag: Option<&str>,
    key: &MessageKey,
) -> ItemResult {
    let lost = pump.borrow().lost.clone();
    let (Some(tag), None) = (tag, lost.clone()) else {
        let reason = lost.unwrap_or_else(|| "the command was not sent".into());
        return (key.clone(), Err(ImapStoreError::Unusable { reason }));
    };
    let uid = uid_of(key);
    pump.borrow_mut().waiting_for = uid;
    let waited = session.wait(
        tag,
        &mut |u| match u {
            Untagged::Fetch(fetch) if fetch.body.is_some() => {
                pump.borrow_mut().on_fetch(fetch);
                None
            }
            other => Some(other),
        },
        &mut SharedPump(pump),
    );
    let mut pump = pump.borrow_mut();
    let result = pump.conclude(waited, uid).unwrap_or_else(|e| {
        pump.lose(&e);
        Err(ImapStoreError::Session(e))
    });
    (key.clone(), result)
}

/// Where a diverted body literal stands.
enum Stream {
    /// The target began the message and receives its bytes.
    Open(MessageKey),
    /// The target failed; the rest of the literal is dropped.
    Failed(MessageKey, io::Error),
    /// Nobody wants it (the server broke a rule); it is dropped.
    Dropped,
}

/// Delivers the bodies of the messages asked for into the target, keyed by
/// UID.
struct BodyPump<'f, 't> {
    folder: &'f str,
    target: &'t mut dyn BodyTarget,
    /// Sent and not yet delivered.
    asked: HashMap<u32, Incoming>,
    /// The UID of the command being waited for.
    waiting_for: u32,
    /// The diverted literal in progress (or complete, awaiting its FETCH).
    current: Option<(u32, Stream)>,
    /// Results of messages whose FETCH arrived, until their completion.
    delivered: HashMap<u32, Result<(), ImapStoreError>>,
    /// The first rule the server broke.
    violation: Option<String>,
    /// What lost the session, once it is lost.
    lost: Option<String>,
}

impl<'f, 't> BodyPump<'f, 't> {
    fn new(folder: &'f str, target: &'t mut dyn BodyTarget) -> Self {
        BodyPump {
            folder,
            target,
            asked: HashMap::new(),
            waiting_for: 0,
            current: None,
            delivered: HashMap::new(),
            violation: None,
            lost: None,
        }
    }

    fn lose(&mut self, error: &ferry_imap::Error) {
        self.lost.get_or_insert_with(|| error.to_string());
    }

    fn violate(&mut self, what: String) {
        self.violation.get_or_insert(what);
    }

    /// A body literal starts: begin the target's message for its UID.
    fn divert(&mut self, prefix: &[u8], len: u64) {
        if let Some((uid, ..)) = &self.current {
            let what = format!("the body of UID {uid} was not followed by its FETCH");
            self.violate(what);
        }
        let uid = prefix_uid(prefix).unwrap_or(self.waiting_for);
        let Some(expected) = self.asked.remove(&uid) else {
            self.violate(format!(
                "a body for UID {uid}, which was not asked for (or twice)"
            ));
            self.current = Some((uid, Stream::Dropped));
            return;
        };
        let incoming = sized(&expected, len);
        let key = incoming.source.clone();
        let stream = match self.target.begin(&incoming) {
            Ok(()) => Stream::Open(key),
            Err(e) => Stream::Failed(key, e),
        };
        self.current = Some((uid, stream));
    }

    fn write(&mut self, data: &[u8]) {
        if let Some((uid, Stream::Open(key))) = &self.current {
            if let Err(e) = self.target.write(data) {
                self.current = Some((*uid, Stream::Failed(key.clone(), e)));
            }
        }
    }

    /// A FETCH with a body was parsed: end the streamed message it
    /// confirms, or deliver a small body held in memory.
    fn on_fetch(&mut self, fetch: Fetch) {
        let Some(uid) = fetch.uid else {
            self.violate("a FETCH body without a UID".into());
            return;
        };
        let delivered = match self.current.take() {
            Some((streamed, stream)) if streamed == uid => self.end(stream),
            Some((streamed, ..)) => {
                self.violate(format!("the body streamed as UID {streamed} was UID {uid}"));
                return;
            }
            None => match self.asked.remove(&uid) {
                Some(incoming) => {
                    self.push_whole(&incoming, fetch.body.as_deref().unwrap_or_default())
                }
                None => {
                    self.violate(format!(
                        "a body for UID {uid}, which was not asked for (or twice)"
                    ));
                    return;
                }
            },
        };
        self.delivered.insert(uid, delivered);
    }

    fn end(&mut self, stream: Stream) -> Result<(), ImapStoreError> {
        match stream {
            Stream::Open(key) => self.target.end().map_err(|e| target_error(key, e)),
            Stream::Failed(key, e) => Err(target_error(key, e)),
            Stream::Dropped => Ok(()),
        }
    }

    fn push_whole(&mut self, incoming: &Incoming, body: &[u8]) -> Result<(), ImapStoreError> {
        let incoming = sized(incoming, body.len() as u64);
        self.target
            .begin(&incoming)
            .and_then(|()| self.target.write(body))
            .and_then(|()| self.target.end())
            .map_err(|source| target_error(incoming.source.clone(), source))
    }

    /// The result of `uid` once its command completed: what was delivered
    /// (a complete body whose UID was confirmed counts, whatever the
    /// completion says), else the refusal, else the message is gone.
    fn conclude(
        &mut self,
        waited: ferry_imap::Result<ferry_imap::Completion>,
        uid: u32,
    ) -> ferry_imap::Result<Result<(), ImapStoreError>> {
        if let Some(what) = self.violation.take() {
            return Err(broken(what));
        }
        self.asked.remove(&uid);
        let delivered = self.delivered.remove(&uid);
        let refusal = match waited.map_err(Refusal::from_imap) {
            Ok(_) => None,
            Err(Ok(refusal)) => Some(refusal),
            Err(Err(lost)) if delivered.is_some() => {
                self.lose(&lost);
                None
            }
            Err(Err(lost)) => return Err(lost),
        };
        let key = uid_key(uid).ok_or_else(|| broken("UID 0".into()))?;
        Ok(match (delivered, refusal) {
            (Some(result), _) => result,
            (None, Some(refusal)) => Err(ImapStoreError::message_refused(
                self.folder,
                Some(&key),
                refusal,
            )),
            (None, None) => Err(vanished(self.folder, key)),
        })
    }
}

/// Lets the framer (literals) and the FETCH handler share one pump.
struct SharedPump<'p, 'f, 't>(&'p RefCell<BodyPump<'f, 't>>);

impl LiteralSink for SharedPump<'_, '_, '_> {
    fn divert(&mut self, prefix: &[u8], len: u64) -> bool {
        let is_body = prefix.starts_with(b"* ") && prefix.ends_with(b"BODY[] ");
        if is_body {
            self.0.borrow_mut().divert(prefix, len);
        }
        // Every body is taken off the wire here, never held in memory, even
        // one that cannot be delivered.
        is_body
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.borrow_mut().write(data);
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn target_error(key: MessageKey, source: io::Error) -> ImapStoreError {
    ImapStoreError::Target { key, source }
}

/// `incoming` with the exact size of the bytes that follow: the literal's
/// length, which is what an APPEND must announce (RFC822.SIZE is the
/// server's claim and not always exact).
fn sized(incoming: &Incoming, len: u64) -> Incoming {
    if incoming.size != len {
        tracing::debug!(
            "{}: RFC822.SIZE {} but the body has {len} bytes",
            incoming.source,
            incoming.size
        );
    }
    Incoming {
        size: len,
        ..incoming.clone()
    }
}

/// The UID a FETCH names before its body literal (`* 5 FETCH (UID 9 BODY[] `).
fn prefix_uid(prefix: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(prefix).ok()?;
    let open = text.find('(')?;
    let mut words = text[open + 1..].split_ascii_whitespace();
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case("UID") {
            return words.next()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uid_before_a_body_is_read() {
        assert_eq!(prefix_uid(b"* 5 FETCH (UID 9 BODY[] "), Some(9));
        assert_eq!(
            prefix_uid(b"* 5 FETCH (FLAGS (\\Seen) UID 12 BODY[] "),
            Some(12)
        );
        assert_eq!(prefix_uid(b"* 5 FETCH (BODY[] "), None);
        assert_eq!(prefix_uid(b"* 5 FETCH (UID x BODY[] "), None);
    }
}
