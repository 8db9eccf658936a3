//! A round trip through the `Store` trait alone, for any store: write three
//! messages, read them back, compare bytes, flags and arrival dates.
//!
//! Include it with `#[path = "support/exercise.rs"] mod exercise;`. Flags
//! are limited to those a Maildir file name can hold, so the same helper
//! runs against the Maildir store.

use ferry_core::store::{BodyTarget, Incoming, Store};
use ferry_core::{Flags, MessageKey};
use std::io;

/// A CRLF message of at least `size` bytes, distinct per `seed`.
pub fn message(seed: usize, size: usize) -> Vec<u8> {
    let mut out = format!(
        "From: a@example.org\r\nMessage-ID: <exercise-{seed}@test.ferry>\r\nSubject: test {seed}\r\n\r\n"
    )
    .into_bytes();
    let mut line = 0;
    while out.len() < size {
        out.extend_from_slice(format!("line {line} of message {seed}\r\n").as_bytes());
        line += 1;
    }
    out
}

/// A target that keeps every message it is given.
#[derive(Default)]
pub struct Collect {
    /// Every message begun, with its bytes.
    pub messages: Vec<(Incoming, Vec<u8>)>,
    /// How many ended.
    pub ended: usize,
    /// The largest piece written at once.
    pub largest_chunk: usize,
}

impl BodyTarget for Collect {
    fn begin(&mut self, message: &Incoming) -> io::Result<()> {
        self.messages.push((message.clone(), Vec::new()));
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.largest_chunk = self.largest_chunk.max(data.len());
        let last = self
            .messages
            .last_mut()
            .ok_or(io::ErrorKind::InvalidInput)?;
        last.1.extend_from_slice(data);
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        self.ended += 1;
        Ok(())
    }
}

/// The three messages the round trip writes, keyed by their source keys.
pub fn sample() -> Vec<(Incoming, Vec<u8>)> {
    [("S", 300), ("FR", 90_000), ("", 5_000)]
        .iter()
        .enumerate()
        .map(|(i, (letters, size))| {
            let body = message(i, *size);
            let incoming = Incoming {
                source: MessageKey::Name(format!("source-{i}").into()),
                flags: Flags::from_maildir_info(letters),
                internal_date: Some(1_600_000_000 + 86_400 * i as i64),
                size: body.len() as u64,
                message_id: Some(format!("<exercise-{i}@test.ferry>")),
                planned_key: None,
            };
            (incoming, body)
        })
        .collect()
}

/// Writes `messages` into `folder` in pieces of 7,001 bytes and returns
/// the new key `finish_writes` reported for each, in order.
pub fn write_all<S: Store>(
    store: &mut S,
    folder: &str,
    messages: &[(Incoming, Vec<u8>)],
) -> Vec<Option<MessageKey>> {
    {
        let mut target = store.begin_writes(folder).expect("begin_writes");
        for (incoming, body) in messages {
            target.begin(incoming).expect("begin");
            for piece in body.chunks(7_001) {
                target.write(piece).expect("write");
            }
            target.end().expect("end");
        }
    }
    let results = store.finish_writes().expect("finish_writes");
    assert_eq!(results.len(), messages.len());
    messages
        .iter()
        .map(|(incoming, _)| {
            let (_, result) = results
                .iter()
                .find(|(source, _)| *source == incoming.source)
                .expect("a result for every message");
            match result {
                Ok(key) => key.clone(),
                Err(e) => panic!("storing {}: {e}", incoming.source),
            }
        })
        .collect()
}

/// Writes the [`sample`] into the empty `folder`, reads every message of
/// the folder back, and checks that bytes, flags and dates survived and
/// that each reported key names its message. Returns the reported keys
/// (in sample order) and what was read back.
pub fn exercise<S: Store>(store: &mut S, folder: &str) -> (Vec<Option<MessageKey>>, Collect) {
    let sent = sample();
    let keys = write_all(store, folder, &sent);
    let snapshot = store.snapshot(folder).expect("snapshot");
    assert_eq!(snapshot.messages.len(), sent.len(), "the folder was empty");
    let all: Vec<MessageKey> = snapshot.messages.iter().map(|m| m.key.clone()).collect();
    let mut got = Collect::default();
    for (key, result) in store
        .read_bodies(folder, &all, &mut got)
        .expect("read_bodies")
    {
        result.unwrap_or_else(|e| panic!("reading {key}: {e}"));
    }
    assert_eq!(got.ended, sent.len());
    for ((incoming, body), key) in sent.iter().zip(&keys) {
        let (read, _) = got
            .messages
            .iter()
            .find(|(_, bytes)| bytes == body)
            .unwrap_or_else(|| panic!("{} read back with the same bytes", incoming.source));
        assert_eq!(read.size, body.len() as u64);
        assert_eq!(read.flags, incoming.flags);
        assert_eq!(read.internal_date, incoming.internal_date);
        if let Some(key) = key {
            assert_eq!(&read.source, key, "the reported key names the message");
        }
        let listed = snapshot.messages.iter().find(|m| m.key == read.source);
        assert_eq!(listed.expect("listed").flags, incoming.flags);
    }
    (keys, got)
}
