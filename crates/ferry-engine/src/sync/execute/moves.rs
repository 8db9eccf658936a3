//! Moves across folders: the store that still has the message in the old
//! folder moves it (IMAP UID MOVE, a Maildir rename), so no body is
//! transferred again; the pair follows it, and the flags both sides agreed
//! on are set where they differ.

use super::{ahead_window, triage};
use crate::sync::report::SyncReport;
use crate::sync::{PreparedRef, SyncError};
use ferry_core::store::{FlagChange, Store};
use ferry_core::{Flags, MessageKey, PerSide, Side};
use ferry_plan::flags::delta;
use ferry_plan::moves::Move;
use ferry_state::{IntentAction, NewIntent, PairChange, State};
use std::collections::BTreeMap;

/// Runs every move, grouped by side and (from, to) folders.
pub(crate) fn run_moves<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    state: &mut State,
    prepared: &BTreeMap<String, PreparedRef<'_>>,
    moves: &[Move],
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let mut groups: BTreeMap<(Side, &str, &str), Vec<&Move>> = BTreeMap::new();
    for m in moves {
        groups
            .entry((m.side, &m.from_folder, &m.to_folder))
            .or_default()
            .push(m);
    }
    let groups: Vec<_> = groups.into_iter().collect();
    let mut announced = 1;
    for (index, &((side, from, to), ref group)) in groups.iter().enumerate() {
        moves_ahead(
            (&mut *far, &mut *near),
            prepared,
            &groups,
            index,
            &mut announced,
        );
        let (Some(source), Some(target)) = (prepared.get(from), prepared.get(to)) else {
            continue;
        };
        let done = match side {
            Side::Far => move_group(far, side, state, (source, target), group, report)?,
            Side::Near => move_group(near, side, state, (source, target), group, report)?,
        };
        settle_flags(far, near, to, &done, report)?;
    }
    Ok(())
}

/// The moves grouped by side and (from, to) folders, in order.
type Groups<'m> = [((Side, &'m str, &'m str), Vec<&'m Move>)];

/// Before group `index` is made: hands the next groups (as many as the
/// stores work ahead) to the stores, which may make them meanwhile on
/// other connections (see [`Store::move_ahead`]); `announced` counts the
/// groups already looked at. Only where a move is one atomic command: a
/// COPY that went through before its connection broke would be made again.
fn moves_ahead<F: Store, N: Store>(
    (far, near): (&mut F, &mut N),
    prepared: &BTreeMap<String, PreparedRef<'_>>,
    groups: &Groups<'_>,
    index: usize,
    announced: &mut usize,
) {
    let window = ahead_window((&*far, &*near), groups.len(), index, announced);
    let known = |name| prepared.get(name).is_some_and(|p| p.id.is_some());
    for ((side, from, to), group) in &groups[window] {
        if !(known(*from) && known(*to)) {
            continue;
        }
        let keys: Vec<MessageKey> = group.iter().map(|m| m.key.clone()).collect();
        match side {
            Side::Far if far.capabilities().atomic_move => far.move_ahead(from, &keys, to),
            Side::Near if near.capabilities().atomic_move => near.move_ahead(from, &keys, to),
            _ => {}
        }
    }
}

/// A move that happened: the message's key on each side in the target
/// folder (the moved side's may be unknown), and the flags each side has.
struct Done {
    keys: PerSide<Option<MessageKey>>,
    now: PerSide<Flags>,
    agreed: Flags,
}

fn move_group<S: Store>(
    store: &mut S,
    side: Side,
    state: &mut State,
    (source, target): (&PreparedRef<'_>, &PreparedRef<'_>),
    group: &[&Move],
    report: &mut SyncReport,
) -> Result<Vec<Done>, SyncError> {
    let (Some(from_id), Some(to_id)) = (source.id, target.id) else {
        return Ok(Vec::new());
    };
    // Indexed once per group: a move of many messages looks each one up.
    let stored_by_key: BTreeMap<&MessageKey, &ferry_state::StoredPair> = source
        .stored
        .iter()
        .filter_map(|p| p.pair.keys[side].as_ref().map(|k| (k, p)))
        .collect();
    let stored = |m: &Move| stored_by_key.get(&m.key).copied();
    let before = FlagsBefore::new(source, target, side);
    let intents: Vec<NewIntent> = group
        .iter()
        .map(|m| NewIntent {
            side,
            folder: from_id,
            pair: stored(m).map(|p| p.id),
            action: IntentAction::Move {
                to_folder: to_id,
                key: m.key.clone(),
                to_uidnext_before: target.snapshots[side].markers.uid_next,
            },
        })
        .collect();
    let ids = state.record_intents(&intents)?;
    let keys: Vec<MessageKey> = group.iter().map(|m| m.key.clone()).collect();
    let (from, to) = (&group[0].from_folder, &group[0].to_folder);
    let results = store
        .move_messages(from, &keys, to)
        .map_err(|e| SyncError::store(side, e))?;
    let caps = store.capabilities();
    // COPY + \Deleted without UID EXPUNGE: the originals stay behind.
    let leaves_originals = !caps.atomic_move && !caps.selective_expunge;
    let mut completed = Vec::new();
    let mut leftovers = Vec::new();
    let mut done = Vec::new();
    for ((m, id), result) in group.iter().zip(ids).zip(results) {
        match result {
            Ok(new_key) => {
                let now = before.of(m);
                let keys = PerSide::from_fn(|s| {
                    if s == side {
                        new_key.clone()
                    } else {
                        Some(m.partner.clone())
                    }
                });
                let change = match stored(m) {
                    Some(stored) => {
                        if leaves_originals {
                            leftovers.push(leftover(stored, from_id, side, &m.key));
                        }
                        let mut moved = stored.clone();
                        moved.pair.folder = to_id;
                        moved.pair.keys = keys.clone();
                        // Where the new key is unknown, the agreed flags
                        // cannot be set on the copy yet: record what it has,
                        // so the next run still sees the other side's change.
                        moved.pair.flags = match &new_key {
                            Some(_) => m.flags.clone(),
                            None => now[side].clone(),
                        };
                        PairChange::Update(moved)
                    }
                    None => PairChange::Nothing,
                };
                completed.push((id, change));
                report.folder(to).moved_into[side] += 1;
                done.push(Done {
                    keys,
                    now,
                    agreed: m.flags.clone(),
                });
            }
            Err(e) => {
                state.abandon(id)?;
                let what = format!("moving {} from {from} to {to}", m.key);
                triage(side, e, &mut report.folder(from).failed, &what)?;
                // Neither folder is done: both must be looked into again
                // (a skipped target would turn the move into a deletion).
                let note = format!("{what}: failed (see {from})");
                report.folder(to).failed.push(note);
            }
        }
    }
    state.complete_batch(&completed)?;
    if !leftovers.is_empty() {
        state.apply_pair_changes(&leftovers)?;
    }
    Ok(done)
}

/// The original a move left behind, marked deleted: paired on its side
/// only and awaiting expunge, so it is never copied back.
fn leftover(
    stored: &ferry_state::StoredPair,
    folder: ferry_state::FolderId,
    side: Side,
    key: &MessageKey,
) -> PairChange {
    let mut pair = stored.pair.clone();
    pair.folder = folder;
    pair.keys = PerSide::default();
    pair.keys[side] = Some(key.clone());
    pair.email_ids = PerSide::default();
    pair.flags.insert(ferry_core::Flag::Deleted);
    pair.awaiting_expunge = Some(side);
    PairChange::Insert(pair)
}

/// The flags a moved message had on each side before the move: in the
/// source folder on the moving side, as its partner in the target folder
/// on the other.
struct FlagsBefore<'a> {
    side: Side,
    moved: BTreeMap<&'a MessageKey, &'a Flags>,
    partners: BTreeMap<&'a MessageKey, &'a Flags>,
}

impl<'a> FlagsBefore<'a> {
    fn new(
        source: &'a PreparedRef<'a>,
        target: &'a PreparedRef<'a>,
        side: Side,
    ) -> FlagsBefore<'a> {
        let index = |prepared: &'a PreparedRef<'a>, s: Side| {
            prepared.snapshots[s]
                .messages
                .iter()
                .map(|m| (&m.key, &m.flags))
                .collect()
        };
        FlagsBefore {
            side,
            moved: index(source, side),
            partners: index(target, side.other()),
        }
    }

    fn of(&self, m: &Move) -> PerSide<Flags> {
        let flags = |map: &BTreeMap<&MessageKey, &Flags>, key: &MessageKey| {
            map.get(key).map(|f| (*f).clone()).unwrap_or_default()
        };
        PerSide::from_fn(|s| {
            if s == self.side {
                flags(&self.moved, &m.key)
            } else {
                flags(&self.partners, &m.partner)
            }
        })
    }
}

/// Sets the agreed flags where a side differs, in the target folder.
fn settle_flags<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    folder: &str,
    done: &[Done],
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    apply_agreed(far, Side::Far, folder, done, report)?;
    apply_agreed(near, Side::Near, folder, done, report)
}

fn apply_agreed<S: Store>(
    store: &mut S,
    side: Side,
    folder: &str,
    done: &[Done],
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let changes: Vec<FlagChange> = done
        .iter()
        .filter_map(|d| {
            let key = d.keys[side].clone()?;
            let (add, remove) = delta(&d.now[side], &d.agreed);
            (!add.is_empty() || !remove.is_empty()).then_some(FlagChange { key, add, remove })
        })
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    let results = store
        .set_flags(folder, &changes)
        .map_err(|e| SyncError::store(side, e))?;
    for (change, result) in changes.iter().zip(results) {
        let report = report.folder(folder);
        match result {
            Ok(()) => report.flags_changed[side] += 1,
            Err(e) => triage(
                side,
                e,
                &mut report.failed,
                &format!("flags of moved {}", change.key),
            )?,
        }
    }
    Ok(())
}
