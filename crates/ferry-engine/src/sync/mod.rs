//! One sync run between two stores: folders, snapshots, plan, journal,
//! execute, commit (design.md, "One sync run").
//!
//! The run is written once for both directions: the far and near stores
//! are two values of the same trait, indexed by [`Side`]. Every side effect
//! that cannot be repeated safely (storing, moving, removing a message) is
//! journaled before it happens and completed in the same state transaction
//! as the pair it produces; flag changes are idempotent and only update the
//! pair afterwards.

mod ahead;
mod delta;
mod execute;
mod progress;
mod recover;
mod renames;
mod report;
mod skip;

pub use progress::{Control, Progress, Work};
pub use recover::Recovered;
pub use report::{FolderReport, SyncReport};

use ferry_core::store::{
    FolderIdentity, FolderStatus, Markers, Since, Snapshot, Store, StoreError,
};
use ferry_core::{Flag, MessageKey, MessageMeta, PerSide, Side};
use ferry_plan::folder::{Content, Pair, Policy};
use ferry_plan::folders::{FolderAction, FolderInfo, FolderPolicy, KnownFolder, plan_folders};
use ferry_plan::moves::{FolderDiff, FolderState, plan_account_from};
use ferry_state::{FolderId, PairChange, State, StoredPair, ValidityCheck};
use std::collections::{BTreeMap, HashSet};

/// What a run may do.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// A stop request and a progress observer.
    pub control: Control,
    /// The message policy (sync direction, expunge, max size, guard).
    pub policy: Policy,
    /// The folder policy (patterns, create, remove).
    pub folders: FolderPolicy,
    /// Plan only: change nothing anywhere.
    pub dry_run: bool,
    /// Trust no shortcut: every folder is listed and every message looked
    /// at, whatever the markers of the last sync say (`ferry sync
    /// --full`).
    pub full: bool,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A store failed as a whole.
    #[error("{side} store: {source}")]
    Store {
        /// Which store.
        side: Side,
        /// What went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The state database failed.
    #[error(transparent)]
    State(#[from] ferry_state::StateError),
}

impl SyncError {
    fn store<E: StoreError>(side: Side, error: E) -> SyncError {
        SyncError::Store {
            side,
            source: Box::new(error),
        }
    }
}

/// The two stores of a run, far and near.
pub struct Stores<'a, F: Store, N: Store> {
    /// The far store.
    pub far: &'a mut F,
    /// The near store.
    pub near: &'a mut N,
}

/// One folder ready to plan: its state id, both snapshots, its pairs.
struct Prepared {
    name: String,
    /// `None` in a dry run for a folder the state does not know yet.
    id: Option<FolderId>,
    snapshots: PerSide<Snapshot>,
    stored: Vec<StoredPair>,
    pairs: Vec<Pair>,
    /// How many messages each side holds (the mass-delete guard's
    /// measure) where the snapshots hold only what changed (see
    /// [`delta`]): the listing's count, or the state's pairs on a side
    /// left unlisted; `None`: as many as the snapshots hold.
    listed: Option<PerSide<usize>>,
    /// Whether one side was proven unchanged and not listed.
    side_unlisted: bool,
}

/// Runs one sync of every folder the policy selects.
pub fn sync<F: Store, N: Store>(
    stores: Stores<'_, F, N>,
    state: &mut State,
    options: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    let Stores { far, near } = stores;
    let recovered = if options.dry_run {
        Recovered::default()
    } else {
        recover::recover(far, near, state)?
    };
    // The near side and the state first: an IMAP store may have sent its
    // listing at login, and the server works on it meanwhile.
    let near_list = near
        .list_folders()
        .map_err(|e| SyncError::store(Side::Near, e))?;
    // Read once: the folder plan and the skip both judge from it (a folder
    // renamed or created below is not in it, and so never skipped).
    let status = state.status()?;
    let far_list = far
        .list_folders()
        .map_err(|e| SyncError::store(Side::Far, e))?;
    let lists = PerSide::new(far_list, near_list);
    let infos = lists.as_ref().map(|_, list| folder_infos(list));
    let mut known = known_folders(&status);
    renames::see_renames(
        far,
        near,
        state,
        infos.as_ref().map(|_, v| v.as_slice()),
        &mut known,
        &options.folders.filter,
    )?;
    let folder_plan = plan_folders(
        infos.as_ref().map(|_, v| v.as_slice()),
        &known,
        &options.folders,
    );
    let mut report = SyncReport {
        recovered,
        folder_actions: folder_plan.actions.clone(),
        vanished: folder_plan.vanished.clone(),
        ..SyncReport::default()
    };
    if !options.dry_run {
        execute::apply_folder_actions(far, near, state, &folder_plan.actions, &mut report)?;
    }
    let tracking = capability(far, near, |c| c.change_tracking);
    let unchanged = match options.full {
        true => Default::default(),
        false => skip::unchanged_folders(&status, &lists, tracking, &folder_plan.synced),
    };
    report.unchanged = unchanged.len();
    if !options.dry_run {
        let ids: Vec<FolderId> = unchanged.values().copied().collect();
        state.confirm_folders(&ids)?;
    }
    let policy = ferry_plan::folder::Policy {
        keeps_keywords: capability(far, near, |c| c.keywords),
        ..options.policy
    };
    let mut prepared = Vec::new();
    let mut diffs = Vec::new();
    // In a dry run, a folder to be renamed has its messages planned once
    // the rename is done.
    let names: Vec<&String> = (folder_plan.synced.iter())
        .filter(|n| !unchanged.contains_key(*n))
        .filter(|n| !(options.dry_run && renames_to(&folder_plan.actions, n)))
        .collect();
    let planned_new = |name: &str| {
        PerSide::from_fn(|side| options.dry_run && creates(&folder_plan.actions, side, name))
    };
    let eligible = delta::eligible_folders(&status, &lists, tracking, &names, options);
    let mut lookahead = ahead::Lookahead::new(&names, &eligible);
    lookahead.expect((&mut *far, &mut *near));
    for (index, name) in names.iter().enumerate() {
        lookahead.ask(index, (&mut *far, &mut *near), state, options, |n| {
            let new = planned_new(n);
            new.far || new.near
        });
        let known = lookahead.take(name);
        let eligible = eligible.get(name.as_str());
        let new = planned_new(name);
        match prepare(far, near, state, name, options, new, known, eligible) {
            Ok(mut folder) => {
                report.one_side_unchanged += usize::from(folder.side_unlisted);
                let (diff, kept) = folder.diff_and_prune(&policy);
                far.keep_only(name, &kept.far);
                near.keep_only(name, &kept.near);
                diffs.push(diff);
                prepared.push(folder);
            }
            Err(problem) => report.folder(name).failed.push(problem),
        }
    }
    let states: Vec<FolderState<'_>> = prepared
        .iter()
        .map(|p| FolderState {
            name: &p.name,
            now: p.snapshots.as_ref().map(|_, s| s.messages.as_slice()),
            pairs: &p.pairs,
        })
        .collect();
    let plan = plan_account_from(&states, diffs, &policy);
    report.record_plan(&plan);
    if options.dry_run {
        report.plan = Some(plan);
        return Ok(report);
    }
    let refs = prepared_refs(&prepared);
    let control = &options.control;
    control.planned(progress::work(&plan, &refs));
    let outcome = execute::run(far, near, state, &refs, &plan, control, &mut report);
    // Work handed ahead that the run will not take the outcome of (it
    // stopped, or failed) is not made, where no helper has started it.
    if outcome.is_err() || control.stop_requested() {
        far.cancel_ahead();
        near.cancel_ahead();
    }
    outcome?;
    report.stopped = control.stop_requested();
    Ok(report)
}

impl Prepared {
    /// Diffs the folder, then lets go of every message and pair the diff
    /// does not name (unchanged on both sides): the account is planned and
    /// run from what is kept, so a run holds one folder whole at a time,
    /// not the account. Returns the diff and the keys it kept, per side.
    fn diff_and_prune(&mut self, policy: &Policy) -> (FolderDiff, PerSide<HashSet<MessageKey>>) {
        let folder = FolderState {
            name: &self.name,
            now: self.snapshots.as_ref().map(|_, s| s.messages.as_slice()),
            pairs: &self.pairs,
        };
        let mut diff = FolderDiff::new(&folder, policy);
        if let Some(listed) = self.listed {
            diff.listed = listed;
        }
        let keys = diff.referenced(&self.pairs);
        for side in Side::BOTH {
            let messages = &mut self.snapshots[side].messages;
            messages.retain(|m| keys[side].contains(&m.key));
            messages.shrink_to_fit();
        }
        self.pairs.retain(|p| keys.far.contains(&p.keys.far));
        self.pairs.shrink_to_fit();
        self.stored.retain(|s| {
            let named = |side: Side| {
                s.pair.keys[side]
                    .as_ref()
                    .is_some_and(|k| keys[side].contains(k))
            };
            named(Side::Far) || named(Side::Near)
        });
        self.stored.shrink_to_fit();
        (diff, keys)
    }
}

/// What the executor needs of a prepared folder.
pub(crate) struct PreparedRef<'a> {
    pub(crate) id: Option<FolderId>,
    pub(crate) snapshots: &'a PerSide<Snapshot>,
    pub(crate) stored: &'a [StoredPair],
}

fn prepared_refs(prepared: &[Prepared]) -> BTreeMap<String, PreparedRef<'_>> {
    prepared
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                PreparedRef {
                    id: p.id,
                    snapshots: &p.snapshots,
                    stored: &p.stored,
                },
            )
        })
        .collect()
}

fn folder_infos(list: &[FolderStatus]) -> Vec<FolderInfo> {
    list.iter()
        .filter(|f| f.selectable)
        .map(|f| FolderInfo {
            name: f.name.clone(),
            mailbox_id: f.identity.mailbox_id.clone(),
            messages: f.markers.messages.unwrap_or(1),
        })
        .collect()
}

fn known_folders(status: &ferry_state::Status) -> Vec<KnownFolder> {
    status
        .folders
        .iter()
        .map(|f| KnownFolder {
            name: f.folder.names.near.clone(),
            mailbox_id: f.folder.markers.far.mailbox_id.clone(),
            // Messages awaiting expunge are removed already, not synced
            // mail that could vanish.
            pairs: u32::try_from(f.pairs.saturating_sub(f.awaiting_expunge)).unwrap_or(u32::MAX),
            renamed: None,
        })
        .collect()
}

/// Snapshots a folder on both sides and loads its pairs, or, for one
/// `eligible` to it, what changed in it (see [`delta`]); a problem
/// limited to this folder is returned as text for the report.
#[expect(
    clippy::too_many_arguments,
    reason = "the run's parts for one folder; grouping them would only rename them"
)]
fn prepare<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    state: &mut State,
    name: &str,
    options: &SyncOptions,
    planned_new: PerSide<bool>,
    known: Option<ahead::Known>,
    eligible: Option<&delta::Eligible>,
) -> Result<Prepared, String> {
    let dry_run = options.dry_run;
    let mut known = match known {
        Some(known) => known,
        None => ahead::Known::load(state, name, eligible)?,
    };
    if let (Some(changes), Some(folder)) = (known.delta.take(), &known.folder) {
        if let Some(prepared) = delta::prepare(far, near, state, name, folder, changes)? {
            return Ok(prepared);
        }
        known = ahead::Known::load(state, name, None)?;
    }
    let lists_changes = capability(far, near, |c| c.lists_changes);
    let since = known.since(lists_changes, options);
    let ahead::Known {
        folder: known,
        pairs: mut loaded,
        ..
    } = known;
    // A folder a dry run would create does not exist yet: it is empty.
    let mut snapshots = PerSide::new(
        take_snapshot(far, name, planned_new.far, since.far.as_ref())
            .map_err(|e| format!("far: {e}"))?,
        take_snapshot(near, name, planned_new.near, since.near.as_ref())
            .map_err(|e| format!("near: {e}"))?,
    );
    let id = match &known {
        Some(folder) => Some(folder.id),
        None => folder_id(state, name, dry_run).map_err(|e| e.to_string())?,
    };
    let stored = match id {
        Some(id) => {
            if observe_validities(state, id, &snapshots, dry_run).map_err(|e| e.to_string())? {
                loaded = state.load_pairs(id).map_err(|e| e.to_string())?;
            }
            settle_if_missing(far, near, name, &loaded, &mut snapshots)?;
            let loaded = forget_expunged(state, loaded, &snapshots, dry_run)?;
            let loaded = learn_email_ids(state, loaded, &snapshots, dry_run)?;
            complete_partial_pairs(far, near, state, name, loaded, dry_run)?
        }
        None => Vec::new(),
    };
    describe_unpaired(far, near, name, &stored, &mut snapshots)?;
    hide_partial_pairs(&stored, &mut snapshots);
    let keeps_keywords = capability(far, near, |c| c.keywords);
    add_stored_keywords(&stored, keeps_keywords, &mut snapshots);
    let pairs = stored.iter().filter_map(plan_pair).collect();
    Ok(Prepared {
        name: name.to_string(),
        id,
        snapshots,
        stored,
        pairs,
        listed: None,
        side_unlisted: false,
    })
}

/// One capability of both stores, per side.
fn capability<F: Store, N: Store, T>(
    far: &F,
    near: &N,
    pick: impl Fn(ferry_core::store::Capabilities) -> T,
) -> PerSide<T> {
    PerSide::new(pick(far.capabilities()), pick(near.capabilities()))
}

/// Whether a quick listing lacks one of `keys` (messages the state has
/// there): it is then taken again, settled, since a miss must not be taken
/// for a deletion.
fn misses_any<'a>(snapshot: &Snapshot, keys: impl IntoIterator<Item = &'a MessageKey>) -> bool {
    if !snapshot.unsettled {
        return false;
    }
    let present: HashSet<&MessageKey> = snapshot.messages.iter().map(|m| &m.key).collect();
    keys.into_iter().any(|k| !present.contains(k))
}

/// A snapshot of `name`: empty for a folder a dry run would create, from
/// the changes since the last sync where it saved markers, else in full.
fn take_snapshot<S: Store>(
    store: &mut S,
    name: &str,
    planned_new: bool,
    since: Option<&Since>,
) -> Result<Snapshot, S::Error> {
    match (planned_new, since) {
        (true, _) => Ok(empty_snapshot()),
        (false, Some(since)) => store.snapshot_since(name, since),
        (false, None) => store.snapshot(name),
    }
}

/// The key on `side` and flags of each of `pairs` that has one there. A
/// message removed but awaiting expunge was last seen marked deleted.
fn keys_and_flags(pairs: &[StoredPair], side: Side) -> Vec<(MessageKey, ferry_core::Flags)> {
    pairs
        .iter()
        .filter_map(|p| {
            let key = p.pair.keys[side].clone()?;
            let mut flags = p.pair.flags.clone();
            if p.pair.awaiting_expunge == Some(side) {
                flags.insert(Flag::Deleted);
            }
            Some((key, flags))
        })
        .collect()
}

/// What the last completed sync of `folder` knew of `side` (`known`: the
/// keys and flags of its pairs there), for a snapshot of the changes
/// since; `None` (a full listing) before the first.
fn since(
    folder: &ferry_state::Folder,
    side: Side,
    known: Vec<(MessageKey, ferry_core::Flags)>,
) -> Option<Since> {
    folder.last_sync_ms?;
    let markers = &folder.markers[side];
    Some(Since {
        identity: FolderIdentity {
            validity: folder.validity[side],
            mailbox_id: markers.mailbox_id.clone(),
        },
        markers: Markers {
            uid_next: markers.uidnext,
            mod_seq: markers.highest_modseq,
            messages: None,
            stamps: markers.dir_times.map(|t| (t.new_ns, t.cur_ns)),
        },
        known,
    })
}

fn renames_to(actions: &[FolderAction], name: &str) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, FolderAction::Rename { to, .. } if to == name))
}

fn creates(actions: &[FolderAction], side: Side, name: &str) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, FolderAction::Create { side: s, name: n } if *s == side && n == name))
}

fn empty_snapshot() -> Snapshot {
    Snapshot {
        unsettled: false,
        identity: Default::default(),
        markers: Default::default(),
        messages: Vec::new(),
    }
}

/// A quick snapshot that may have missed a message (see
/// [`Snapshot::unsettled`]) is taken again, settled, when a paired message
/// is missing from it: a miss must not be taken for a deletion.
fn settle_if_missing<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    name: &str,
    stored: &[StoredPair],
    snapshots: &mut PerSide<Snapshot>,
) -> Result<(), String> {
    for side in Side::BOTH {
        let known = stored.iter().filter_map(|p| p.pair.keys[side].as_ref());
        if !misses_any(&snapshots[side], known) {
            continue;
        }
        snapshots[side] = match side {
            Side::Far => far
                .settled_snapshot(name)
                .map_err(|e| format!("far: {e}"))?,
            Side::Near => near
                .settled_snapshot(name)
                .map_err(|e| format!("near: {e}"))?,
        };
    }
    Ok(())
}

/// Pairs of messages removed but awaiting expunge are forgotten once the
/// message is gone (someone expunged it) or no longer marked deleted.
fn forget_expunged(
    state: &mut State,
    loaded: Vec<StoredPair>,
    snapshots: &PerSide<Snapshot>,
    dry_run: bool,
) -> Result<Vec<StoredPair>, String> {
    if loaded.iter().all(|p| p.pair.awaiting_expunge.is_none()) {
        return Ok(loaded);
    }
    let present: PerSide<BTreeMap<&MessageKey, &ferry_core::Flags>> = snapshots
        .as_ref()
        .map(|_, s| s.messages.iter().map(|m| (&m.key, &m.flags)).collect());
    // Gone, or no longer marked deleted (someone restored it: it is new
    // again and copied back).
    let settled = |p: &StoredPair| {
        p.pair.awaiting_expunge.is_some_and(|side| {
            let flags = p.pair.keys[side]
                .as_ref()
                .and_then(|k| present[side].get(k));
            flags.is_none_or(|f| !f.contains(&Flag::Deleted))
        })
    };
    let (gone, kept): (Vec<StoredPair>, Vec<StoredPair>) = loaded.into_iter().partition(settled);
    if !gone.is_empty() && !dry_run {
        let changes: Vec<PairChange> = gone.iter().map(|p| PairChange::Delete(p.id)).collect();
        state
            .apply_pair_changes(&changes)
            .map_err(|e| e.to_string())?;
    }
    Ok(kept)
}

/// Records the server's EMAILID (RFC 8474) of paired messages that do not
/// have it yet (uploaded since, or the server gained OBJECTID), so that a
/// move on the server is recognised by it.
fn learn_email_ids(
    state: &mut State,
    mut loaded: Vec<StoredPair>,
    snapshots: &PerSide<Snapshot>,
    dry_run: bool,
) -> Result<Vec<StoredPair>, String> {
    let ids: BTreeMap<&MessageKey, &str> = snapshots
        .far
        .messages
        .iter()
        .filter_map(|m| Some((&m.key, m.email_id.as_deref()?)))
        .collect();
    if ids.is_empty() {
        return Ok(loaded);
    }
    let mut changes = Vec::new();
    for stored in &mut loaded {
        let fresh = stored.pair.keys.far.as_ref().and_then(|k| ids.get(k));
        if let Some(id) = fresh.filter(|id| stored.pair.email_ids.far.as_deref() != Some(**id)) {
            stored.pair.email_ids.far = Some((*id).to_string());
            changes.push(PairChange::Update(stored.clone()));
        }
    }
    if !changes.is_empty() && !dry_run {
        state
            .apply_pair_changes(&changes)
            .map_err(|e| e.to_string())?;
    }
    Ok(loaded)
}

/// Pairs that know their message on one side only (stored where the new
/// key was not reported): look for it once more by Message-ID and size.
fn complete_partial_pairs<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    state: &mut State,
    name: &str,
    loaded: Vec<StoredPair>,
    dry_run: bool,
) -> Result<Vec<StoredPair>, String> {
    let mut out = Vec::with_capacity(loaded.len());
    for mut stored in loaded {
        if stored.pair.awaiting_expunge.is_some() {
            out.push(stored);
            continue;
        }
        let missing = Side::BOTH
            .into_iter()
            .find(|s| stored.pair.keys[*s].is_none());
        let (Some(side), Some(id), Some(size)) =
            (missing, stored.pair.message_id.clone(), stored.pair.size)
        else {
            out.push(stored);
            continue;
        };
        let found = match side {
            Side::Far => far
                .find_stored(name, Some(&id), size, &Default::default())
                .map_err(|e| format!("far: {e}"))?,
            Side::Near => near
                .find_stored(name, Some(&id), size, &Default::default())
                .map_err(|e| format!("near: {e}"))?,
        };
        if let (Some(key), false) = (found, dry_run) {
            stored.pair.keys[side] = Some(key);
            state
                .apply_pair_changes(&[PairChange::Update(stored.clone())])
                .map_err(|e| e.to_string())?;
        }
        out.push(stored);
    }
    Ok(out)
}

/// Messages in no pair whose snapshot did not carry a Message-ID (Maildir
/// files) are described from their content, so the planner can match them
/// by Message-ID and size: a state lost or new (switching from mbsync) then
/// re-pairs instead of copying everything again, and a message saved to
/// another folder under a new file name is recognised as moved.
fn describe_unpaired<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    name: &str,
    stored: &[StoredPair],
    snapshots: &mut PerSide<Snapshot>,
) -> Result<(), String> {
    for side in Side::BOTH {
        // Hashed: Maildir names share long prefixes, which makes ordered
        // lookups compare many bytes.
        let paired: HashSet<&MessageKey> = stored
            .iter()
            .filter_map(|p| p.pair.keys[side].as_ref())
            .collect();
        let keys: Vec<MessageKey> = snapshots[side]
            .messages
            .iter()
            .filter(|m| m.message_id.is_none() && !paired.contains(&m.key))
            .map(|m| m.key.clone())
            .collect();
        if keys.is_empty() {
            continue;
        }
        let described = match side {
            Side::Far => far.describe(name, &keys).map_err(|e| format!("far: {e}"))?,
            Side::Near => near
                .describe(name, &keys)
                .map_err(|e| format!("near: {e}"))?,
        };
        let by_key: BTreeMap<MessageKey, MessageMeta> =
            described.into_iter().map(|m| (m.key.clone(), m)).collect();
        for meta in &mut snapshots[side].messages {
            if let Some(found) = by_key.get(&meta.key) {
                meta.message_id = found.message_id.clone();
                meta.size = meta.size.or(found.size);
                if meta.fingerprint.is_none() {
                    meta.fingerprint.clone_from(&found.fingerprint);
                }
            }
        }
    }
    Ok(())
}

/// A pair that still lacks one key keeps its known message out of the plan:
/// it is neither copied again nor taken for deleted.
fn hide_partial_pairs(stored: &[StoredPair], snapshots: &mut PerSide<Snapshot>) {
    for side in Side::BOTH {
        let hidden: Vec<&MessageKey> = stored
            .iter()
            .filter(|p| p.pair.keys[side.other()].is_none())
            .filter_map(|p| p.pair.keys[side].as_ref())
            .collect();
        if !hidden.is_empty() {
            snapshots[side]
                .messages
                .retain(|m| !hidden.contains(&&m.key));
        }
    }
}

/// On a side that cannot hold keywords, a paired message still has the
/// keywords the last sync agreed on: they live in the state, and their
/// absence from the snapshot is no change (else the other side would lose
/// them).
fn add_stored_keywords(
    stored: &[StoredPair],
    keeps_keywords: PerSide<bool>,
    snapshots: &mut PerSide<Snapshot>,
) {
    for side in Side::BOTH.into_iter().filter(|s| !keeps_keywords[*s]) {
        let keywords: BTreeMap<&MessageKey, Vec<Flag>> = stored
            .iter()
            .filter_map(|p| {
                let key = p.pair.keys[side].as_ref()?;
                let words: Vec<Flag> = (p.pair.flags.iter())
                    .filter(|f| f.maildir_letter().is_none())
                    .cloned()
                    .collect();
                (!words.is_empty()).then_some((key, words))
            })
            .collect();
        if keywords.is_empty() {
            continue;
        }
        for meta in &mut snapshots[side].messages {
            if let Some(words) = keywords.get(&meta.key) {
                for word in words {
                    meta.flags.insert(word.clone());
                }
            }
        }
    }
}

fn folder_id(
    state: &mut State,
    name: &str,
    dry_run: bool,
) -> Result<Option<FolderId>, ferry_state::StateError> {
    if let Some(folder) = state.find_folder(Side::Near, name)? {
        return Ok(Some(folder.id));
    }
    if dry_run {
        return Ok(None);
    }
    state
        .add_folder(&PerSide::new(name.to_string(), name.to_string()))
        .map(Some)
}

/// Records each side's UIDVALIDITY; true when one changed, which rewrites
/// the folder's pairs.
fn observe_validities(
    state: &mut State,
    id: FolderId,
    snapshots: &PerSide<Snapshot>,
    dry_run: bool,
) -> Result<bool, ferry_state::StateError> {
    if dry_run {
        return Ok(false);
    }
    let mut changed = false;
    for side in Side::BOTH {
        if let Some(validity) = snapshots[side].identity.validity {
            let check = state.observe_validity(id, side, validity)?;
            changed |= !matches!(check, ValidityCheck::Unchanged | ValidityCheck::Adopted);
        }
    }
    Ok(changed)
}

/// The planner's view of a stored pair; pairs missing a key on either side
/// (an APPEND whose UID is not known yet) are not planned.
fn plan_pair(stored: &StoredPair) -> Option<Pair> {
    let pair = &stored.pair;
    let keys: PerSide<MessageKey> = PerSide::new(pair.keys.far.clone()?, pair.keys.near.clone()?);
    Some(Pair {
        keys,
        flags: pair.flags.clone(),
        content: Content {
            message_id: pair.message_id.as_deref().map(Box::from),
            size: pair.size,
            fingerprint: pair.fingerprint,
            email_id: pair.email_ids.far.as_deref().map(Box::from),
        },
    })
}
