//! Carrying out a plan: folder changes, then per folder the state-only
//! changes, flags, deletions and copies, then moves across folders, then
//! the folders' markers.
//!
//! Journal discipline (design.md, "Crash safety"): a copy, a removal or a
//! move is recorded as an intent in one durable transaction per batch
//! before it happens, and completed together with the pair it produces;
//! an intent whose effect failed is abandoned. A failure limited to one
//! message or folder is reported and the rest goes on; a store that fails
//! as a whole ends the run.

use super::report::SyncReport;
use super::{Control, PreparedRef, SyncError};
use ferry_core::store::{ErrorClass, FlagChange, Snapshot, Store, StoreError};
use ferry_core::{Flag, Flags, MessageKey, MessageMeta, PerSide, Side};
use ferry_plan::folder::{Action, FolderPlan};
use ferry_plan::folders::FolderAction;
use ferry_plan::moves::{AccountPlan, Move};
use ferry_state::{FolderId, IntentAction, NewIntent, PairChange, SideMarkers, State, StoredPair};
use std::collections::{BTreeMap, HashMap, HashSet};

mod copy;
mod moves;

/// Turns a store's failure into a report line (message or folder class)
/// or the end of the run (store class).
pub(crate) fn triage<E: StoreError>(
    side: Side,
    error: E,
    failures: &mut Vec<String>,
    what: &str,
) -> Result<(), SyncError> {
    match error.class() {
        ErrorClass::Store => Err(SyncError::store(side, error)),
        ErrorClass::Message | ErrorClass::Folder => {
            failures.push(format!("{what} ({side}): {error}"));
            Ok(())
        }
    }
}

/// Applies the folder plan's changes.
pub(crate) fn apply_folder_actions<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    state: &mut State,
    actions: &[FolderAction],
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    for action in actions {
        let failures = &mut report.folder_failures;
        let done = match action {
            FolderAction::Create { side, name } => {
                let what = format!("creating folder {name}");
                match side {
                    Side::Far => far
                        .create_folder(name)
                        .map(|()| true)
                        .or_else(|e| triage(Side::Far, e, failures, &what).map(|()| false)),
                    Side::Near => near
                        .create_folder(name)
                        .map(|()| true)
                        .or_else(|e| triage(Side::Near, e, failures, &what).map(|()| false)),
                }?
            }
            FolderAction::Remove { side, name } => {
                let what = format!("removing empty folder {name}");
                let removed = match side {
                    Side::Far => far
                        .delete_folder(name)
                        .map(|()| true)
                        .or_else(|e| triage(Side::Far, e, failures, &what).map(|()| false)),
                    Side::Near => near
                        .delete_folder(name)
                        .map(|()| true)
                        .or_else(|e| triage(Side::Near, e, failures, &what).map(|()| false)),
                }?;
                if removed {
                    forget_folder(state, name)?;
                }
                removed
            }
            FolderAction::Rename { side, from, to } => {
                let done = match side {
                    Side::Far => rename_on(far, *side, from, to, failures),
                    Side::Near => rename_on(near, *side, from, to, failures),
                }?;
                if done {
                    rename_in_state(state, from, to)?;
                }
                done
            }
            FolderAction::Forget { name } => {
                forget_folder(state, name)?;
                true
            }
        };
        tracing::info!(?action, done, "folder change");
    }
    Ok(())
}

/// Renames a folder on one side. A refused rename whose folder is already
/// under the new name counts as done: a subfolder the rename of its parent
/// carried along (IMAP RENAME and an `fs` Maildir do, a `maildir++` one
/// does not), or a rename an interrupted run made before saving it.
fn rename_on<S: Store>(
    store: &mut S,
    side: Side,
    from: &str,
    to: &str,
    failures: &mut Vec<String>,
) -> Result<bool, SyncError> {
    let refused = match store.rename_folder(from, to) {
        Ok(()) => return Ok(true),
        Err(e) if e.class() == ErrorClass::Store => return Err(SyncError::store(side, e)),
        Err(e) => e,
    };
    let listed = store
        .list_folders()
        .map_err(|e| SyncError::store(side, e))?;
    let exists = |name: &str| listed.iter().any(|f| f.name == name);
    if !exists(from) && exists(to) {
        return Ok(true);
    }
    let what = format!("renaming folder {from} to {to}");
    triage(side, refused, failures, &what).map(|()| false)
}

fn rename_in_state(state: &mut State, from: &str, to: &str) -> Result<(), SyncError> {
    if let Some(folder) = state.find_folder(Side::Near, from)? {
        state.rename_folder_pair(folder.id, &PerSide::new(to.to_string(), to.to_string()))?;
    }
    Ok(())
}

fn forget_folder(state: &mut State, name: &str) -> Result<(), SyncError> {
    if let Some(folder) = state.find_folder(Side::Near, name)? {
        state.delete_folder(folder.id)?;
    }
    Ok(())
}

/// Everything about one folder the executor needs.
pub(crate) struct FolderRun<'a> {
    pub(crate) name: &'a str,
    pub(crate) id: FolderId,
    pub(crate) snapshots: &'a PerSide<Snapshot>,
    /// Stored pairs by each side's key (borrowed: a large folder's keys are
    /// not copied).
    by_key: PerSide<HashMap<&'a MessageKey, &'a StoredPair>>,
    /// Each side's snapshot by key (copies and moves look messages up one
    /// by one; a scan per lookup would be quadratic in a large folder).
    metas: PerSide<BTreeMap<&'a MessageKey, &'a MessageMeta>>,
}

impl FolderRun<'_> {
    pub(crate) fn stored(&self, side: Side, key: &MessageKey) -> Option<&StoredPair> {
        self.by_key[side].get(key).copied()
    }

    pub(crate) fn meta(&self, side: Side, key: &MessageKey) -> Option<&MessageMeta> {
        self.metas[side].get(key).copied()
    }
}

fn folder_run<'a>(name: &'a str, prepared: &'a PreparedRef<'a>) -> Option<FolderRun<'a>> {
    let id = prepared.id?;
    let by_key = PerSide::from_fn(|side| {
        prepared
            .stored
            .iter()
            .filter_map(|stored| Some((stored.pair.keys[side].as_ref()?, stored)))
            .collect()
    });
    let metas = prepared
        .snapshots
        .as_ref()
        .map(|_, s| s.messages.iter().map(|m| (&m.key, m)).collect());
    Some(FolderRun {
        name,
        id,
        snapshots: prepared.snapshots,
        by_key,
        metas,
    })
}

/// Executes an account plan.
pub(crate) fn run<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    state: &mut State,
    prepared: &BTreeMap<String, PreparedRef<'_>>,
    plan: &AccountPlan,
    control: &Control,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let mut finished = Vec::new();
    let folders: Vec<(&String, &FolderPlan)> = plan.folders.iter().collect();
    let used_by_moves = keys_moves_use(&plan.moves);
    let mut announced = 0;
    for (index, &(name, folder_plan)) in folders.iter().enumerate() {
        if control.stop_requested() {
            return Ok(());
        }
        changes_ahead(
            (&mut *far, &mut *near),
            prepared,
            &folders,
            index,
            &mut announced,
        );
        let Some(run) = prepared.get(name).and_then(|p| folder_run(name, p)) else {
            continue;
        };
        if !folder_plan.actions.is_empty() {
            control.folder(name);
        }
        run_folder(
            far,
            near,
            state,
            &run,
            &folder_plan.actions,
            control,
            report,
        )?;
        keep_for_moves((&mut *far, &mut *near), name, &used_by_moves);
        finished.push(name);
    }
    if control.stop_requested() {
        return Ok(());
    }
    moves::run_moves(far, near, state, prepared, &plan.moves, report)?;
    control.done(report);
    for (name, folder_plan) in &plan.folders {
        let clean = report.folders.get(name).is_none_or(|r| r.failed.is_empty())
            && finished.contains(&name);
        if let (true, Some(p)) = (clean && folder_plan.held.is_empty(), prepared.get(name)) {
            if let Some(id) = p.id {
                state.commit_folder_sync(id, &markers(p.snapshots))?;
            }
        }
    }
    Ok(())
}

/// Once folder `name` is done, the stores need to remember of it only the
/// messages that moves later in the run take out of it, or whose flags
/// they settle in it: what they learnt of the rest while carrying out its
/// plan (every file a first sync delivered) is let go of, so a run holds
/// that of one folder at a time.
fn keep_for_moves<F: Store, N: Store>(
    (far, near): (&mut F, &mut N),
    name: &str,
    later: &HashMap<&str, PerSide<HashSet<MessageKey>>>,
) {
    let none = PerSide::default();
    let keep = later.get(name).unwrap_or(&none);
    far.keep_only(name, &keep.far);
    near.keep_only(name, &keep.near);
}

/// Per folder and side, the keys the moves use there: the message a move
/// takes out of its folder; in the target, the message on the other side
/// whose flags the move settles, and the moving message itself (a replay
/// finds it there, moved already).
fn keys_moves_use(moves: &[Move]) -> HashMap<&str, PerSide<HashSet<MessageKey>>> {
    let mut used: HashMap<&str, PerSide<HashSet<MessageKey>>> = HashMap::new();
    for m in moves {
        let from = used.entry(m.from_folder.as_str()).or_default();
        from[m.side].insert(m.key.clone());
        let to = used.entry(m.to_folder.as_str()).or_default();
        to[m.side.other()].insert(m.partner.clone());
        to[m.side].insert(m.key.clone());
    }
    used
}

/// Before folder `index` is worked on: hands the flag changes and
/// removals of the next folders (as many as the stores work ahead) to the
/// stores, which may make them meanwhile on other connections (see
/// [`Store::set_flags_ahead`], [`Store::remove_ahead`]); `announced`
/// counts the folders already looked at.
fn changes_ahead<F: Store, N: Store>(
    (far, near): (&mut F, &mut N),
    prepared: &BTreeMap<String, PreparedRef<'_>>,
    folders: &[(&String, &FolderPlan)],
    index: usize,
    announced: &mut usize,
) {
    let window = ahead_window((far, near), folders.len(), index, announced);
    for &(name, folder_plan) in &folders[window] {
        if prepared
            .get(name.as_str())
            .and_then(|p| folder_run(name, p))
            .is_none()
        {
            continue;
        }
        for side in Side::BOTH {
            match side {
                Side::Far => announce(far, side, name, &folder_plan.actions),
                Side::Near => announce(near, side, name, &folder_plan.actions),
            }
        }
    }
}

/// Before item `index` of `len` (a folder, a group of moves) is worked on:
/// the next ones, as many as the stores work ahead, not yet handed ahead;
/// `announced` counts those already looked at, and now includes these.
fn ahead_window<F: Store, N: Store>(
    (far, near): (&F, &N),
    len: usize,
    index: usize,
    announced: &mut usize,
) -> std::ops::Range<usize> {
    let depth = far.ahead_depth().max(near.ahead_depth());
    let end = (index + 1 + depth).min(len);
    let start = (*announced).max(index + 1).min(end);
    *announced = (*announced).max(end);
    start..end
}

/// Hands `store` the flag changes and removals of `actions` on `side`.
fn announce<S: Store>(store: &mut S, side: Side, folder: &str, actions: &[Action]) {
    let changes = storable_changes(store, &flag_changes(actions, side));
    if !changes.is_empty() {
        store.set_flags_ahead(folder, &changes);
    }
    let removals = removal_keys(actions, side);
    if !removals.is_empty() {
        store.remove_ahead(folder, &removals);
    }
}

/// The keys the Remove actions on `side` name.
fn removal_keys(actions: &[Action], side: Side) -> Vec<MessageKey> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Remove { side: s, key } if *s == side => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// What the folder looked like when it was listed: the next run compares
/// against these (changes ferry made itself make the next run look again,
/// which finds nothing to do).
fn markers(snapshots: &PerSide<Snapshot>) -> PerSide<SideMarkers> {
    snapshots.as_ref().map(|_, s| SideMarkers {
        uidnext: s.markers.uid_next,
        highest_modseq: s.markers.mod_seq,
        mailbox_id: s.identity.mailbox_id.clone(),
        dir_times: s
            .markers
            .stamps
            .map(|(new_ns, cur_ns)| ferry_state::DirTimes { new_ns, cur_ns }),
    })
}

fn run_folder<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    state: &mut State,
    run: &FolderRun<'_>,
    actions: &[Action],
    control: &Control,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let mut failed_keys: Vec<(Side, MessageKey)> = Vec::new();
    for side in Side::BOTH {
        let changes = flag_changes(actions, side);
        let outcome = match side {
            Side::Far => set_flags(far, side, run, &changes, report),
            Side::Near => set_flags(near, side, run, &changes, report),
        }?;
        failed_keys.extend(outcome.into_iter().map(|k| (side, k)));
    }
    apply_pair_actions(state, run, actions, &failed_keys)?;
    control.done(report);
    for side in Side::BOTH {
        match side {
            Side::Far => remove(far, side, state, run, actions, report)?,
            Side::Near => remove(near, side, state, run, actions, report)?,
        }
    }
    control.done(report);
    copy::run_copies(far, near, state, run, actions, control, report)
}

/// The SetFlags and MarkDeleted actions on `side`, as flag changes.
fn flag_changes(actions: &[Action], side: Side) -> Vec<FlagChange> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::SetFlags {
                side: s,
                key,
                add,
                remove,
            } if *s == side => Some(FlagChange {
                key: key.clone(),
                add: add.clone(),
                remove: remove.clone(),
            }),
            Action::MarkDeleted { side: s, key } if *s == side => Some(FlagChange {
                key: key.clone(),
                add: [Flag::Deleted].into_iter().collect(),
                remove: Flags::new(),
            }),
            _ => None,
        })
        .collect()
}

/// Applies flag changes on one side; returns the keys that failed.
fn set_flags<S: Store>(
    store: &mut S,
    side: Side,
    run: &FolderRun<'_>,
    changes: &[FlagChange],
    report: &mut SyncReport,
) -> Result<Vec<MessageKey>, SyncError> {
    let changes = storable_changes(store, changes);
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let changes = changes.as_slice();
    let results = store
        .set_flags(run.name, changes)
        .map_err(|e| SyncError::store(side, e))?;
    let mut failed = Vec::new();
    for (change, result) in changes.iter().zip(results) {
        let folder = report.folder(run.name);
        match result {
            Ok(())
                if change.add.contains(&Flag::Deleted)
                    && change.remove.is_empty()
                    && change.add.iter().count() == 1 =>
            {
                folder.marked_deleted[side] += 1;
            }
            Ok(()) => folder.flags_changed[side] += 1,
            Err(e) => {
                failed.push(change.key.clone());
                triage(
                    side,
                    e,
                    &mut folder.failed,
                    &format!("flags of {} in {}", change.key, run.name),
                )?;
            }
        }
    }
    Ok(failed)
}

/// The parts of `changes` `store` keeps (see [`storable`]).
fn storable_changes<S: Store>(store: &S, changes: &[FlagChange]) -> Vec<FlagChange> {
    let keeps_keywords = store.capabilities().keywords;
    changes
        .iter()
        .filter_map(|c| storable(c, keeps_keywords))
        .collect()
}

/// The part of a flag change a store keeps: all of it, or without the
/// keywords (kept in the state only); `None` when nothing is left.
fn storable(change: &FlagChange, keeps_keywords: bool) -> Option<FlagChange> {
    if keeps_keywords {
        return Some(change.clone());
    }
    let letters = |flags: &Flags| -> Flags {
        flags
            .iter()
            .filter(|f| f.maildir_letter().is_some())
            .cloned()
            .collect()
    };
    let (add, remove) = (letters(&change.add), letters(&change.remove));
    (!add.is_empty() || !remove.is_empty()).then(|| FlagChange {
        key: change.key.clone(),
        add,
        remove,
    })
}

/// Unpair, Pair (adoption or new base flags) and the base flags of marked
/// messages, in one state transaction; pairs whose flag change failed keep
/// their old base so the next run tries again.
fn apply_pair_actions(
    state: &mut State,
    run: &FolderRun<'_>,
    actions: &[Action],
    failed: &[(Side, MessageKey)],
) -> Result<(), SyncError> {
    let touched_failed = |keys: &PerSide<MessageKey>| {
        Side::BOTH
            .iter()
            .any(|s| failed.contains(&(*s, keys[*s].clone())))
    };
    // A pair re-keyed (Unpair + Pair sharing a key) stays as it was when
    // its new pair cannot be recorded, so the next run re-keys again.
    let skipped: Vec<&PerSide<MessageKey>> = (actions.iter())
        .filter_map(|a| match a {
            Action::Pair { keys, .. } if touched_failed(keys) => Some(keys),
            _ => None,
        })
        .collect();
    let rekey_skipped = |keys: &PerSide<MessageKey>| {
        skipped
            .iter()
            .any(|p| p.far == keys.far || p.near == keys.near)
    };
    let mut changes = Vec::new();
    for action in actions {
        match action {
            Action::Unpair { keys } if !rekey_skipped(keys) => {
                if let Some(stored) = run.stored(Side::Far, &keys.far) {
                    changes.push(PairChange::Delete(stored.id));
                }
            }
            Action::Pair { keys, flags } if !touched_failed(keys) => {
                changes.push(pair_change(run, keys, flags))
            }
            Action::MarkDeleted { side, key } if !failed.contains(&(*side, key.clone())) => {
                if let Some(stored) = run.stored(*side, key) {
                    let mut updated = stored.clone();
                    updated.pair.flags.insert(Flag::Deleted);
                    changes.push(PairChange::Update(updated));
                }
            }
            _ => {}
        }
    }
    if !changes.is_empty() {
        state.apply_pair_changes(&changes)?;
    }
    Ok(())
}

/// A Pair action: new base flags for a stored pair, or a new pair for two
/// messages matched by content.
fn pair_change(run: &FolderRun<'_>, keys: &PerSide<MessageKey>, flags: &Flags) -> PairChange {
    if let Some(stored) = run
        .stored(Side::Far, &keys.far)
        .filter(|s| s.pair.keys.near.as_ref() == Some(&keys.near))
    {
        let mut updated = stored.clone();
        updated.pair.flags = flags.clone();
        return PairChange::Update(updated);
    }
    let mut pair = ferry_state::Pair::new(run.id);
    pair.keys = keys.clone().map(|_, k| Some(k));
    pair.flags = flags.clone();
    if let Some(meta) = run
        .meta(Side::Far, &keys.far)
        .or_else(|| run.meta(Side::Near, &keys.near))
    {
        pair.size = meta.size;
        pair.message_id = meta.message_id.as_deref().map(String::from);
        pair.fingerprint = meta.fingerprint.as_deref().copied();
    }
    PairChange::Insert(pair)
}

/// A removal that could only mark the message deleted (no UIDPLUS): the
/// pair keeps it on that side, awaiting expunge, so it is never copied
/// back; it is forgotten once someone expunges it.
fn awaiting_expunge(stored: &StoredPair, side: Side) -> PairChange {
    let mut kept = stored.clone();
    kept.pair.keys[side.other()] = None;
    kept.pair.flags.insert(Flag::Deleted);
    kept.pair.awaiting_expunge = Some(side);
    PairChange::Update(kept)
}

/// The Remove actions on `side`: journaled, carried out, completed.
fn remove<S: Store>(
    store: &mut S,
    side: Side,
    state: &mut State,
    run: &FolderRun<'_>,
    actions: &[Action],
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let keys = removal_keys(actions, side);
    if keys.is_empty() {
        return Ok(());
    }
    let intents: Vec<NewIntent> = keys
        .iter()
        .map(|key| NewIntent {
            side,
            folder: run.id,
            pair: run.stored(side, key).map(|s| s.id),
            action: IntentAction::Remove { key: key.clone() },
        })
        .collect();
    let ids = state.record_intents(&intents)?;
    let only_marks = !store.capabilities().selective_expunge;
    let results = store
        .remove(run.name, &keys)
        .map_err(|e| SyncError::store(side, e))?;
    let mut completed = Vec::new();
    for ((key, id), result) in keys.iter().zip(ids).zip(results) {
        let folder = report.folder(run.name);
        match result {
            Ok(()) => {
                folder.removed[side] += 1;
                let change = match run.stored(side, key) {
                    Some(s) if only_marks => awaiting_expunge(s, side),
                    Some(s) => PairChange::Delete(s.id),
                    None => PairChange::Nothing,
                };
                completed.push((id, change));
            }
            Err(e) => {
                state.abandon(id)?;
                triage(
                    side,
                    e,
                    &mut folder.failed,
                    &format!("removing {key} from {}", run.name),
                )?;
            }
        }
    }
    state.complete_batch(&completed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::Uid;

    fn uid(n: u32) -> MessageKey {
        MessageKey::Uid(Uid::new(n).expect("a UID"))
    }

    fn name(n: &str) -> MessageKey {
        MessageKey::Name(n.into())
    }

    fn a_move(side: Side, from: &str, key: MessageKey, to: &str, partner: MessageKey) -> Move {
        Move {
            side,
            from_folder: from.to_string(),
            to_folder: to.to_string(),
            old_pair: PerSide::new(uid(1), name("old")),
            key,
            partner,
            flags: Flags::new(),
        }
    }

    /// A folder done keeps what moves later take out of it, and in the
    /// target the partner whose flags they settle and the moving message;
    /// the rest is let go of.
    #[test]
    fn moves_keep_their_source_and_the_partner_in_their_target() {
        let moves = [
            a_move(Side::Near, "INBOX", name("n1"), "Archive", uid(40)),
            a_move(Side::Far, "Sent", uid(7), "Archive", name("n9")),
        ];
        let used = keys_moves_use(&moves);
        let set = |keys: &[MessageKey]| keys.iter().cloned().collect::<HashSet<_>>();
        assert_eq!(used["INBOX"].near, set(&[name("n1")]));
        assert_eq!(used["INBOX"].far, set(&[]));
        assert_eq!(used["Sent"].far, set(&[uid(7)]));
        assert_eq!(used["Archive"].far, set(&[uid(40), uid(7)]));
        assert_eq!(used["Archive"].near, set(&[name("n9"), name("n1")]));
        assert!(!used.contains_key("Drafts"));
    }
}
