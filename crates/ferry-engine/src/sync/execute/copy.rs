//! Copies: each message streamed from the store that has it into the other,
//! journaled first, recorded as a pair once durable.
//!
//! While the bytes pass, the message's Message-ID and fingerprint are taken
//! from them, so the pair can be recognised later (moves, a lost state, a
//! UIDVALIDITY change) and a store that cannot report new keys can be
//! searched for the message.

use super::{FolderRun, triage};
use crate::sync::report::SyncReport;
use crate::sync::{Control, SyncError};
use ferry_core::store::{BodyTarget, ErrorClass, Incoming, Markers, Store, StoreError};
use ferry_core::{Fingerprint, Flags, MessageKey, MessageMeta, PerSide, Side};
use ferry_maildir::Fingerprinter;
use ferry_plan::folder::Action;
use ferry_state::{IntentAction, IntentId, NewIntent, PairChange, State};
use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

/// One message to copy.
struct Item<'a> {
    key: &'a MessageKey,
    flags: &'a Flags,
    replaces: Option<&'a PerSide<MessageKey>>,
    meta: Option<&'a MessageMeta>,
}

/// At most how many messages one journaled batch copies: one durable
/// transaction at each end of a batch, a few round trips (the metadata
/// fetch, the last answers) and a stop request waits at most for one.
const BATCH: usize = 2000;

/// How long a batch should take: a stop request waits for one batch, and
/// each batch costs a few round trips and two durable transactions.
const BATCH_TIME: Duration = Duration::from_secs(2);

/// The bytes the first batch copies, and the least any batch copies (a lone
/// larger message is a batch of its own); later batches copy what the
/// line carried in [`BATCH_TIME`] before, up to [`MAX_BATCH_BYTES`].
const MIN_BATCH_BYTES: u64 = 16 << 20;

/// The most bytes one batch copies.
const MAX_BATCH_BYTES: u64 = 256 << 20;

/// The size assumed for a message whose size the snapshot did not give.
const UNKNOWN_SIZE: u64 = 64 << 10;

/// Runs the Copy actions of a folder, far -> near first, then near -> far,
/// in batches; a stop request ends the run between batches.
pub(crate) fn run_copies<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    state: &mut State,
    run: &FolderRun<'_>,
    actions: &[Action],
    control: &Control,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    copy_from((far, near), Side::Far, state, run, actions, control, report)?;
    copy_from(
        (near, far),
        Side::Near,
        state,
        run,
        actions,
        control,
        report,
    )
}

/// Runs the Copy actions from `src_side`, in batches, each sized by the
/// rate the last one reached in this direction (a line is often faster
/// one way).
fn copy_from<S: Store, D: Store>(
    (src, dst): (&mut S, &mut D),
    src_side: Side,
    state: &mut State,
    run: &FolderRun<'_>,
    actions: &[Action],
    control: &Control,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let into = src_side.other();
    let mut budget = BatchBudget::default();
    let mut left = items(run, actions, src_side);
    while !left.is_empty() && !control.stop_requested() {
        let rest = left.split_off(batch_len(&left, budget.bytes));
        let started = budget.start(report, run.name, into);
        copy_batch(
            (&mut *src, &mut *dst),
            src_side,
            state,
            run,
            left,
            control,
            report,
        )?;
        budget.learn(started, report, run.name, into);
        left = rest;
    }
    Ok(())
}

/// How many bytes the next batch copies: as many as the line carried in
/// [`BATCH_TIME`], as last measured.
struct BatchBudget {
    bytes: u64,
}

impl Default for BatchBudget {
    fn default() -> Self {
        BatchBudget {
            bytes: MIN_BATCH_BYTES,
        }
    }
}

impl BatchBudget {
    /// A batch into `into` starts: the bytes copied into that side of
    /// `folder` so far, and when.
    fn start(&self, report: &mut SyncReport, folder: &str, into: Side) -> (u64, Instant) {
        (report.folder(folder).bytes_into[into], Instant::now())
    }

    /// The batch `start` described is done: adjust to the bytes it really
    /// moved (a batch whose messages failed fast moved few).
    fn learn(
        &mut self,
        (before, started): (u64, Instant),
        report: &mut SyncReport,
        folder: &str,
        into: Side,
    ) {
        let moved = report.folder(folder).bytes_into[into].saturating_sub(before);
        self.adjust(moved, started.elapsed());
    }

    /// `bytes` took `took`: the next batch takes [`BATCH_TIME`] at that
    /// rate, at most twice the last budget.
    fn adjust(&mut self, bytes: u64, took: Duration) {
        let rate = bytes as f64 / took.as_secs_f64().max(0.001);
        let wanted = (rate * BATCH_TIME.as_secs_f64()) as u64;
        let most = self.bytes.saturating_mul(2).min(MAX_BATCH_BYTES);
        self.bytes = wanted.clamp(MIN_BATCH_BYTES, most);
    }
}

/// How many of `items` (at least one) the next batch takes: up to
/// [`BATCH`] messages and `max_bytes`.
fn batch_len(items: &[Item<'_>], max_bytes: u64) -> usize {
    let mut bytes = 0;
    let fits = items.iter().take(BATCH).take_while(|item| {
        bytes += item.size();
        bytes <= max_bytes
    });
    fits.count().max(1).min(items.len())
}

fn items<'a>(run: &'a FolderRun<'_>, actions: &'a [Action], from: Side) -> Vec<Item<'a>> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Copy {
                from: f,
                key,
                flags,
                replaces,
            } if *f == from => Some(Item {
                key,
                flags,
                replaces: replaces.as_deref(),
                meta: run.meta(from, key),
            }),
            _ => None,
        })
        .collect()
}

impl Item<'_> {
    /// The message's size, as the snapshot gave it.
    fn size(&self) -> u64 {
        self.meta.and_then(|m| m.size).unwrap_or(UNKNOWN_SIZE)
    }
}

/// What streaming learnt of one message.
#[derive(Default)]
struct Seen {
    bytes: u64,
    message_id: Option<String>,
    fingerprint: Option<Fingerprint>,
}

fn copy_batch<S: Store, D: Store>(
    (src, dst): (&mut S, &mut D),
    src_side: Side,
    state: &mut State,
    run: &FolderRun<'_>,
    items: Vec<Item<'_>>,
    control: &Control,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    if items.is_empty() {
        return Ok(());
    }
    let dst_side = src_side.other();
    let since = run.snapshots[dst_side].markers.clone();
    let planned: Vec<Option<MessageKey>> = items.iter().map(|_| dst.fresh_key()).collect();
    let described = describe(src, src_side, run, &items)?;
    let ids = journal(state, run, src_side, &items, &planned, &since, &described)?;
    let (read, seen) = stream(src, dst, src_side, run, &items, &planned, control)?;
    let written: HashMap<MessageKey, _> = dst
        .finish_writes()
        .map_err(|e| SyncError::store(dst_side, e))?
        .into_iter()
        .collect();
    let mut seen = seen;
    for (key, fingerprint) in dst.take_fingerprints() {
        if let Some(learnt) = seen.get_mut(&key) {
            learnt.fingerprint.get_or_insert(fingerprint);
        }
    }
    let mut read: HashMap<MessageKey, _> = read.into_iter().collect();
    let mut written = written;
    let mut completed = Vec::new();
    // A store that failed as a whole ends the run, but only once the rest
    // of the batch is recorded; a write it lost with its connection may
    // have been stored (an APPEND whose OK never came), so its intent
    // stays pending for recovery to look for.
    let mut lost = None;
    for (item, id) in items.iter().zip(ids) {
        let what = format!("copying {} in {}", item.key, run.name);
        let failures = &mut report.folder(run.name).failed;
        if let Some(Err(e)) = read.remove(item.key) {
            state.abandon(id)?;
            match e.class() {
                ErrorClass::Store => drop(lost.get_or_insert(SyncError::store(src_side, e))),
                _ => triage(src_side, e, failures, &what)?,
            }
            continue;
        }
        let learnt = seen.remove(item.key).unwrap_or_default();
        match written.remove(item.key) {
            Some(Ok(key)) => {
                let key = match key {
                    Some(key) => Some(key),
                    None => find_stored(dst, dst_side, run.name, &learnt, &since)?,
                };
                let folder = report.folder(run.name);
                folder.copied_into[dst_side] += 1;
                folder.bytes_into[dst_side] += learnt.bytes;
                completed.push((id, record(run, src_side, item, key, &learnt)));
                if let Some(old) = &item.replaces {
                    if let Some(stored) = run.stored(src_side, &old[src_side]) {
                        state.apply_pair_changes(&[PairChange::Delete(stored.id)])?;
                    }
                }
            }
            Some(Err(e)) if e.class() == ErrorClass::Store => {
                lost.get_or_insert(SyncError::store(dst_side, e));
            }
            Some(Err(e)) => {
                state.abandon(id)?;
                triage(dst_side, e, failures, &what)?;
            }
            None => {
                state.abandon(id)?;
                failures.push(format!("{what}: the {src_side} store did not deliver it"));
            }
        }
    }
    state.complete_batch(&completed)?;
    control.done(report);
    match lost {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The Message-ID and size of the items whose snapshot did not say, so
/// that their intents name what recovery searches for.
fn describe<S: Store>(
    src: &mut S,
    src_side: Side,
    run: &FolderRun<'_>,
    items: &[Item<'_>],
) -> Result<HashMap<MessageKey, Seen>, SyncError> {
    let missing: Vec<MessageKey> = items
        .iter()
        .filter(|i| i.meta.and_then(|m| m.message_id.as_ref()).is_none())
        .map(|i| i.key.clone())
        .collect();
    if missing.is_empty() {
        return Ok(HashMap::new());
    }
    let described = src
        .describe(run.name, &missing)
        .map_err(|e| SyncError::store(src_side, e))?;
    Ok(described
        .into_iter()
        .map(|m| {
            let seen = Seen {
                bytes: m.size.unwrap_or(0),
                message_id: m.message_id.map(String::from),
                fingerprint: None,
            };
            (m.key, seen)
        })
        .collect())
}

/// Records the intents of a batch in one durable transaction.
fn journal(
    state: &mut State,
    run: &FolderRun<'_>,
    src_side: Side,
    items: &[Item<'_>],
    planned: &[Option<MessageKey>],
    since: &Markers,
    described: &HashMap<MessageKey, Seen>,
) -> Result<Vec<IntentId>, SyncError> {
    let dst_side = src_side.other();
    let intents: Vec<NewIntent> = items
        .iter()
        .zip(planned)
        .map(|(item, planned)| {
            let none = Seen::default();
            let learnt = described.get(item.key).unwrap_or(&none);
            let pair = new_pair(run, src_side, item, planned.clone(), learnt);
            let action = match planned {
                Some(_) => IntentAction::Deliver { pair },
                None => IntentAction::Append {
                    pair,
                    uidnext_before: since.uid_next,
                },
            };
            NewIntent {
                side: dst_side,
                folder: run.id,
                pair: None,
                action,
            }
        })
        .collect();
    Ok(state.record_intents(&intents)?)
}

type Streamed<E> = (Vec<(MessageKey, Result<(), E>)>, HashMap<MessageKey, Seen>);

/// Streams the bodies from `src` into a write batch of `dst`.
fn stream<S: Store, D: Store>(
    src: &mut S,
    dst: &mut D,
    src_side: Side,
    run: &FolderRun<'_>,
    items: &[Item<'_>],
    planned: &[Option<MessageKey>],
    control: &Control,
) -> Result<Streamed<S::Error>, SyncError> {
    let keys: Vec<MessageKey> = items.iter().map(|i| i.key.clone()).collect();
    let wanted: HashMap<MessageKey, (Option<MessageKey>, Flags)> = items
        .iter()
        .zip(planned)
        .map(|(i, p)| (i.key.clone(), (p.clone(), i.flags.clone())))
        .collect();
    let dst_fingerprints = dst.capabilities().fingerprints_writes;
    let target = dst
        .begin_writes(run.name)
        .map_err(|e| SyncError::store(src_side.other(), e))?;
    let mut tap = Tap {
        hash: !dst_fingerprints,
        inner: target,
        wanted,
        current: None,
        seen: HashMap::new(),
        control,
    };
    let read = src
        .read_bodies(run.name, &keys, &mut tap)
        .map_err(|e| SyncError::store(src_side, e))?;
    Ok((read, tap.seen))
}

/// Passes bodies to the destination, with the planned key and flags, and
/// learns each message's size, Message-ID and fingerprint on the way.
struct Tap<'t> {
    /// Hash the stream (unless the destination fingerprints what it
    /// stores: see [`Capabilities::fingerprints_writes`]).
    ///
    /// [`Capabilities::fingerprints_writes`]: ferry_core::store::Capabilities::fingerprints_writes
    hash: bool,
    inner: Box<dyn BodyTarget + 't>,
    wanted: HashMap<MessageKey, (Option<MessageKey>, Flags)>,
    current: Option<(MessageKey, Fingerprinter, HeaderScan)>,
    seen: HashMap<MessageKey, Seen>,
    control: &'t Control,
}

impl BodyTarget for Tap<'_> {
    fn begin(&mut self, message: &Incoming) -> io::Result<()> {
        let mut message = message.clone();
        if let Some((planned, flags)) = self.wanted.get(&message.source) {
            message.planned_key = planned.clone();
            message.flags = flags.clone();
        }
        self.current = Some((
            message.source.clone(),
            Fingerprinter::new(),
            HeaderScan::default(),
        ));
        self.inner.begin(&message)
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some((_, fingerprinter, headers)) = self.current.as_mut() {
            match self.hash {
                true => fingerprinter.update(data),
                false => fingerprinter.count(data),
            }
            headers.feed(data);
        }
        self.control.bytes(data.len() as u64);
        self.inner.write(data)
    }

    fn end(&mut self) -> io::Result<()> {
        self.inner.end()?;
        if let Some((key, fingerprinter, headers)) = self.current.take() {
            let (fingerprint, bytes) = fingerprinter.finish();
            self.seen.insert(
                key,
                Seen {
                    bytes,
                    message_id: headers.message_id(),
                    fingerprint: self.hash.then_some(fingerprint),
                },
            );
        }
        Ok(())
    }
}

/// Collects a message's header (up to 64 KiB) to read its Message-ID.
#[derive(Default)]
struct HeaderScan {
    header: Vec<u8>,
    done: bool,
}

const HEADER_LIMIT: usize = 64 << 10;

impl HeaderScan {
    fn feed(&mut self, data: &[u8]) {
        if self.done {
            return;
        }
        let room = HEADER_LIMIT.saturating_sub(self.header.len());
        self.header.extend_from_slice(&data[..data.len().min(room)]);
        if self.header.windows(4).any(|w| w == b"\r\n\r\n") || self.header.len() >= HEADER_LIMIT {
            self.done = true;
        }
    }

    fn message_id(&self) -> Option<String> {
        ferry_core::header_message_id(&self.header, !self.done || self.header.len() < HEADER_LIMIT)
    }
}

/// When the destination could not report the new key: search for it.
fn find_stored<D: Store>(
    dst: &mut D,
    dst_side: Side,
    folder: &str,
    learnt: &Seen,
    since: &Markers,
) -> Result<Option<MessageKey>, SyncError> {
    dst.find_stored(folder, learnt.message_id.as_deref(), learnt.bytes, since)
        .map_err(|e| SyncError::store(dst_side, e))
}

/// The pair a copy records: both keys (the new one may still be unknown),
/// the flags given, what streaming learnt.
fn record(
    run: &FolderRun<'_>,
    src_side: Side,
    item: &Item<'_>,
    key: Option<MessageKey>,
    learnt: &Seen,
) -> PairChange {
    PairChange::Insert(new_pair(run, src_side, item, key, learnt))
}

fn new_pair(
    run: &FolderRun<'_>,
    src_side: Side,
    item: &Item<'_>,
    dst_key: Option<MessageKey>,
    learnt: &Seen,
) -> ferry_state::Pair {
    let mut pair = ferry_state::Pair::new(run.id);
    pair.keys[src_side] = Some(item.key.clone());
    pair.keys[src_side.other()] = dst_key;
    pair.flags = item.flags.clone();
    pair.size = item
        .meta
        .and_then(|m| m.size)
        .or((learnt.bytes > 0).then_some(learnt.bytes));
    pair.message_id = learnt.message_id.clone().or_else(|| {
        item.meta
            .and_then(|m| m.message_id.as_deref().map(String::from))
    });
    pair.fingerprint = learnt
        .fingerprint
        .or_else(|| item.meta.and_then(|m| m.fingerprint.as_deref().copied()));
    pair.email_ids[src_side] = item
        .meta
        .and_then(|m| m.email_id.as_deref().map(String::from));
    pair
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_is_read_from_the_header_only() {
        let mut scan = HeaderScan::default();
        scan.feed(b"Subject: x\r\nMessage-Id:\r\n <a@b>\r\n\r\nMessage-ID: <not@this>\r\n");
        assert_eq!(scan.message_id().as_deref(), Some("<a@b>"));
        let mut none = HeaderScan::default();
        none.feed(b"Subject: x\r\n\r\nMessage-ID: <body@only>\r\n");
        assert_eq!(none.message_id(), None);
    }

    fn sized(sizes: &[Option<u64>]) -> Vec<MessageMeta> {
        (1..)
            .zip(sizes)
            .map(|(n, size)| MessageMeta {
                size: *size,
                ..MessageMeta::new(MessageKey::Name(format!("m{n}").into()), Flags::default())
            })
            .collect()
    }

    fn batch_of(metas: &[MessageMeta]) -> usize {
        let items: Vec<Item<'_>> = metas
            .iter()
            .map(|m| Item {
                key: &m.key,
                flags: &m.flags,
                replaces: None,
                meta: Some(m),
            })
            .collect();
        batch_len(&items, MIN_BATCH_BYTES)
    }

    #[test]
    fn batches_end_at_a_count_or_a_size() {
        let small = sized(&vec![Some(2_000); 5_000]);
        assert_eq!(batch_of(&small), BATCH);
        let large = sized(&vec![Some(1 << 20); 40]);
        assert_eq!(batch_of(&large), 16);
        let huge = sized(&[Some(100 << 20), Some(10)]);
        assert_eq!(batch_of(&huge), 1, "a lone large message still goes");
        let unknown = sized(&vec![None; 1_000]);
        assert_eq!(batch_of(&unknown), 256);
        assert_eq!(batch_of(&sized(&[Some(5)])), 1);
    }

    #[test]
    fn batches_grow_with_the_line_and_stay_bounded() {
        let mut budget = BatchBudget::default();
        assert_eq!(budget.bytes, MIN_BATCH_BYTES);
        let second = Duration::from_secs(1);
        // 24 MiB in a second would make a batch of 48 MiB.
        budget.adjust(24 << 20, second);
        assert_eq!(budget.bytes, 32 << 20, "at most twice the last");
        budget.adjust(20 << 20, second);
        assert_eq!(budget.bytes, 40 << 20);
        for _ in 0..10 {
            budget.adjust(1 << 30, second);
        }
        assert_eq!(budget.bytes, MAX_BATCH_BYTES);
        // A slow line: back to the least.
        budget.adjust(1 << 20, 10 * second);
        assert_eq!(budget.bytes, MIN_BATCH_BYTES);
    }
}
