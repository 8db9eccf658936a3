//! Preparing a folder from what changed in it, instead of from all of it
//! (design.md, "One sync run", steps 2 to 5).
//!
//! A folder that changed on one side only is the common case of a run
//! after the first: a few flags set on the server, a few messages read
//! locally. Every folder eligible (below; never under `--full` or in a
//! dry run) is compared with the keys and flags the state has for it,
//! read without the rest of each pair; only
//! the pairs of the messages that differ are loaded, and only those, with
//! the messages the state does not have, are planned.
//!
//! A side proven unchanged (the proof [`super::skip`] uses for whole
//! folders) is not even listed: it is what the state says. That holds only
//! where the state mirrors the side exactly, so a side is left unlisted
//! only under the default policy (messages, deletions and expunges flow
//! both ways, no size limit): elsewhere a pair can outlive its message (a
//! local deletion under `sync = "pull"`) and a message can stay unpaired
//! (too large). An unpaired message can still sit on a Maildir side (one
//! already marked deleted is not copied), which a new message on the other
//! side could match by content: when the listed side has a message the
//! state does not know, a Maildir side is listed too. An IMAP side's proof
//! counts its messages: under that policy, as many messages as pairs means
//! none sits there unpaired. The policy the state was built under is the
//! command's concern: after a change of settings, `ferry sync` runs over
//! every folder in full before it trusts the state again.
//!
//! A folder is prepared this way only when nothing in the state needs the
//! whole folder: it was synced before, no intent is pending, no pair awaits
//! an expunge or knows one side only. A UIDVALIDITY that changed, or a
//! share of changed messages large enough that loading each pair alone
//! costs more than loading all, falls back to the whole folder.
//!
//! The stores are told what the state says of a side not listed
//! ([`Store::known_unchanged`]), so that acting on those messages needs no
//! listing either.

use super::{
    Prepared, SyncOptions, add_stored_keywords, capability, describe_unpaired, learn_email_ids,
    misses_any, plan_pair, since, skip,
};
use ferry_core::store::{FolderIdentity, FolderStatus, Markers, Snapshot, Store};
use ferry_core::{Flags, MessageKey, MessageMeta, PerSide, Side};
use ferry_state::{State, StoredPair};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Above this share of a folder's pairs, changed messages load all pairs
/// at once rather than one by one.
const LOAD_ALL_SHARE: usize = 8;

/// A folder to prepare from its changes, as decided from the folder
/// listings and the state's counts before anything is read.
#[derive(Debug, Clone)]
pub(super) struct Eligible {
    /// The state's id of the folder the proof was made against.
    id: ferry_state::FolderId,
    /// Per side, what listing the folders said of it when it is proven
    /// unchanged; `None` for a side to list.
    quiet: PerSide<Option<(FolderIdentity, Markers)>>,
    /// The folder's pairs.
    pairs: u64,
}

/// What was read of an eligible folder before it is listed.
pub(super) struct Known {
    pub(super) eligible: Eligible,
    /// The keys and flags the state has on each side to list (empty on a
    /// quiet side).
    pub(super) keys: PerSide<Vec<(MessageKey, Flags)>>,
}

/// The folders of `names` that can be prepared from their changes, with
/// the sides proven unchanged. Folders unchanged on both sides are skipped
/// whole and are not among them.
pub(super) fn eligible_folders(
    status: &ferry_state::Status,
    lists: &PerSide<Vec<FolderStatus>>,
    tracking: PerSide<bool>,
    names: &[&String],
    options: &SyncOptions,
) -> HashMap<String, Eligible> {
    if options.full || options.dry_run {
        return HashMap::new();
    }
    let policy = &options.policy;
    let mirrored = policy.flow_into.far
        && policy.flow_into.near
        && policy.expunge.far
        && policy.expunge.near
        && policy.max_size.is_none();
    let listed = skip::listed_by_name(lists);
    let saved = skip::saved_by_name(status);
    let mut out = HashMap::new();
    for name in names {
        let Some(saved) = saved.get(name.as_str()) else {
            continue;
        };
        let settled = saved.folder.last_sync_ms.is_some()
            && saved.pending_intents == 0
            && saved.awaiting_expunge == 0
            && saved.incomplete == 0;
        if !settled {
            continue;
        }
        let quiet = PerSide::from_fn(|side| {
            let now = listed[side].get(name.as_str())?;
            let proven = mirrored && tracking[side] && skip::side_unchanged(saved, side, now);
            proven.then(|| {
                let mut identity = now.identity.clone();
                // LIST-STATUS does not say MAILBOXID: keep the one saved.
                identity.mailbox_id = (identity.mailbox_id.take())
                    .or_else(|| saved.folder.markers[side].mailbox_id.clone());
                (identity, now.markers.clone())
            })
        });
        let eligible = Eligible {
            id: saved.folder.id,
            quiet,
            pairs: saved.pairs,
        };
        out.insert(name.to_string(), eligible);
    }
    out
}

impl Known {
    /// Lists `side` after all: reads the keys and flags the state has there.
    fn list_too(
        &mut self,
        state: &State,
        folder: ferry_state::FolderId,
        side: Side,
    ) -> Result<(), String> {
        let sides = PerSide::from_fn(|s| s == side);
        let mut keys = state
            .load_keys_and_flags(folder, sides)
            .map_err(|e| e.to_string())?;
        self.keys[side] = std::mem::take(&mut keys[side]);
        self.eligible.quiet[side] = None;
        Ok(())
    }

    /// Whether a side left unlisted may hold a message the state does not
    /// pair: a Maildir side (its proof does not count messages).
    fn may_hide_unpaired(&self, side: Side) -> bool {
        let pairs = u32::try_from(self.eligible.pairs).ok();
        self.eligible.quiet[side]
            .as_ref()
            .is_some_and(|(_, markers)| markers.messages.is_none() || markers.messages != pairs)
    }

    /// Reads the keys and flags of the sides to list; `None` when the
    /// folder is no longer the one the proof was made against.
    pub(super) fn load(
        state: &State,
        folder: &ferry_state::Folder,
        eligible: &Eligible,
    ) -> Result<Option<Known>, String> {
        if folder.id != eligible.id {
            return Ok(None);
        }
        let lists = PerSide::from_fn(|side| eligible.quiet[side].is_none());
        let keys = state
            .load_keys_and_flags(folder.id, lists)
            .map_err(|e| e.to_string())?;
        Ok(Some(Known {
            eligible: eligible.clone(),
            keys,
        }))
    }

    /// Whether `side` is listed (not proven unchanged).
    pub(super) fn lists(&self, side: Side) -> bool {
        self.eligible.quiet[side].is_none()
    }

    /// What to list the changes since, on a side listed by a store that can.
    pub(super) fn since(
        &self,
        folder: &ferry_state::Folder,
        lists_changes: PerSide<bool>,
    ) -> PerSide<Option<ferry_core::store::Since>> {
        PerSide::from_fn(|side| self.since_on(folder, side, lists_changes))
    }

    /// What to list the changes of `side` since, if it is listed by a
    /// store that can.
    fn since_on(
        &self,
        folder: &ferry_state::Folder,
        side: Side,
        lists_changes: PerSide<bool>,
    ) -> Option<ferry_core::store::Since> {
        (self.lists(side) && lists_changes[side])
            .then(|| since(folder, side, self.keys[side].clone()))
            .flatten()
    }
}

/// One side listed, compared with what the state has of it.
struct Listed {
    snapshot: Snapshot,
    /// How many messages the listing holds (the mass-delete guard's
    /// measure), before it is cut to what changed.
    total: usize,
    /// Per message of the listing, whether the state has it.
    paired: Vec<bool>,
    /// Keys the state has whose message is gone or has other flags.
    changed: Vec<MessageKey>,
    /// How many listed messages the state does not have.
    unknown: usize,
}

/// Lists the sides `known` lists that are not listed yet, and compares
/// them with the state; false when a UIDVALIDITY changed (the whole folder
/// is paired again).
fn list_sides<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    name: &str,
    folder: &ferry_state::Folder,
    known: &Known,
    listed: &mut PerSide<Option<Listed>>,
) -> Result<bool, String> {
    let keeps_keywords = capability(far, near, |c| c.keywords);
    let lists_changes = capability(far, near, |c| c.lists_changes);
    for side in Side::BOTH.into_iter().filter(|s| known.lists(*s)) {
        if listed[side].is_some() {
            continue;
        }
        let since = known.since_on(folder, side, lists_changes);
        let snapshot = match side {
            Side::Far => {
                list(far, name, since.as_ref(), &known.keys.far).map_err(|e| format!("far: {e}"))?
            }
            Side::Near => list(near, name, since.as_ref(), &known.keys.near)
                .map_err(|e| format!("near: {e}"))?,
        };
        if snapshot.identity.validity != folder.validity[side] {
            return Ok(false);
        }
        listed[side] = Some(compare(snapshot, &known.keys[side], keeps_keywords[side]));
    }
    Ok(true)
}

/// Prepares folder `name` from its changes; `Ok(None)` when it has to be
/// prepared whole after all.
pub(super) fn prepare<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    state: &mut State,
    name: &str,
    folder: &ferry_state::Folder,
    mut known: Known,
) -> Result<Option<Prepared>, String> {
    let keeps_keywords = capability(far, near, |c| c.keywords);
    let mut listed: PerSide<Option<Listed>> = PerSide::default();
    if !list_sides(far, near, name, folder, &known, &mut listed)? {
        return Ok(None);
    }
    // A message the state does not know on a listed side could match one
    // a Maildir side left unlisted holds unpaired: that side is listed too.
    let unknown = Side::BOTH
        .iter()
        .any(|s| listed[*s].as_ref().is_some_and(|l| l.unknown > 0));
    let hiding: Vec<Side> = (Side::BOTH.into_iter())
        .filter(|s| known.may_hide_unpaired(*s))
        .collect();
    if unknown && !hiding.is_empty() {
        for side in hiding {
            known.list_too(state, folder.id, side)?;
        }
        if !list_sides(far, near, name, folder, &known, &mut listed)? {
            return Ok(None);
        }
    }
    let changed: usize = Side::BOTH
        .iter()
        .filter_map(|s| listed[*s].as_ref())
        .map(|l| l.changed.len())
        .sum();
    let pairs = usize::try_from(known.eligible.pairs).unwrap_or(usize::MAX);
    let loaded = match changed > pairs / LOAD_ALL_SHARE {
        true => state.load_pairs(folder.id).map_err(|e| e.to_string())?,
        false => load_changed(state, folder.id, &listed)?,
    };
    let totals = PerSide::from_fn(|side| listed[side].as_ref().map_or(pairs, |l| l.total));
    let mut snapshots = PerSide::from_fn(|side| match listed[side].take() {
        Some(listed) => cut_to(listed, &loaded, side),
        None => from_state(&known.eligible, side, &loaded, keeps_keywords[side]),
    });
    for side in Side::BOTH.into_iter().filter(|s| !known.lists(*s)) {
        match side {
            Side::Far => far.known_unchanged(name, &snapshots.far),
            Side::Near => near.known_unchanged(name, &snapshots.near),
        }
    }
    let stored = learn_email_ids(state, loaded, &snapshots, false)?;
    describe_unpaired(far, near, name, &stored, &mut snapshots)?;
    add_stored_keywords(&stored, keeps_keywords, &mut snapshots);
    let pairs = stored.iter().filter_map(plan_pair).collect();
    Ok(Some(Prepared {
        name: name.to_string(),
        id: Some(folder.id),
        snapshots,
        stored,
        pairs,
        listed: Some(totals),
        side_unlisted: !known.lists(Side::Far) || !known.lists(Side::Near),
    }))
}

/// Lists one side: its changes since `since` where given, else whole. A
/// quick listing that may have missed a message is taken again, settled,
/// when a message the state has is missing from it (a miss must not be
/// taken for a deletion).
fn list<S: Store>(
    store: &mut S,
    name: &str,
    since: Option<&ferry_core::store::Since>,
    keys: &[(MessageKey, Flags)],
) -> Result<Snapshot, S::Error> {
    let snapshot = match since {
        Some(since) => store.snapshot_since(name, since)?,
        None => store.snapshot(name)?,
    };
    match misses_any(&snapshot, keys.iter().map(|(key, _)| key)) {
        true => store.settled_snapshot(name),
        false => Ok(snapshot),
    }
}

/// Compares a listing with the keys and flags the state has of its side.
/// Where the side holds no keywords, they are not compared: the state
/// keeps them for it.
fn compare(snapshot: Snapshot, keys: &[(MessageKey, Flags)], keeps_keywords: bool) -> Listed {
    let now: HashMap<&MessageKey, usize> = (snapshot.messages.iter().enumerate())
        .map(|(at, m)| (&m.key, at))
        .collect();
    let mut paired = vec![false; snapshot.messages.len()];
    let differs = |then: &Flags, now: &Flags| match keeps_keywords {
        true => then != now,
        false => then.without_keywords() != now.without_keywords(),
    };
    let mut changed = Vec::new();
    for (key, then) in keys {
        match now.get(key) {
            Some(&at) => {
                paired[at] = true;
                if differs(then, &snapshot.messages[at].flags) {
                    changed.push(key.clone());
                }
            }
            None => changed.push(key.clone()),
        }
    }
    Listed {
        total: snapshot.messages.len(),
        unknown: paired.iter().filter(|p| !**p).count(),
        snapshot,
        paired,
        changed,
    }
}

/// The pairs of the messages that changed, each loaded by its key.
fn load_changed(
    state: &State,
    folder: ferry_state::FolderId,
    listed: &PerSide<Option<Listed>>,
) -> Result<Vec<StoredPair>, String> {
    let mut loaded: BTreeMap<ferry_state::PairId, StoredPair> = BTreeMap::new();
    for side in Side::BOTH {
        for key in listed[side].iter().flat_map(|l| &l.changed) {
            let found = state
                .find_pair(folder, side, key)
                .map_err(|e| e.to_string())?;
            if let Some(stored) = found {
                loaded.entry(stored.id).or_insert(stored);
            }
        }
    }
    Ok(loaded.into_values().collect())
}

/// A listing cut to the messages of `loaded` and those the state does not
/// have (new, or left unpaired): the rest is unchanged on both sides.
fn cut_to(listed: Listed, loaded: &[StoredPair], side: Side) -> Snapshot {
    let Listed {
        mut snapshot,
        paired,
        ..
    } = listed;
    let touched: HashSet<&MessageKey> = (loaded.iter())
        .filter_map(|p| p.pair.keys[side].as_ref())
        .collect();
    debug_assert_eq!(paired.len(), snapshot.messages.len());
    let mut paired = paired.into_iter();
    // Out of step (never): taken for paired, so not copied again.
    snapshot.messages.retain(|m| {
        let paired = paired.next().unwrap_or(true);
        !paired || touched.contains(&m.key)
    });
    snapshot.messages.shrink_to_fit();
    snapshot
}

/// A side proven unchanged, as the state has it: the messages of `loaded`
/// with the flags last synced (without keywords where the side holds
/// none), and the identity and markers listing the folders reported.
fn from_state(
    eligible: &Eligible,
    side: Side,
    loaded: &[StoredPair],
    keeps_keywords: bool,
) -> Snapshot {
    let (identity, markers) = eligible.quiet[side].clone().unwrap_or_default();
    let messages = loaded
        .iter()
        .filter_map(|p| {
            let key = p.pair.keys[side].clone()?;
            let flags = match keeps_keywords {
                true => p.pair.flags.clone(),
                false => p.pair.flags.without_keywords(),
            };
            Some(MessageMeta::new(key, flags))
        })
        .collect();
    Snapshot {
        identity,
        markers,
        messages,
        unsettled: false,
    }
}
