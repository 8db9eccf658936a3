//! Recovery of the journal at the start of a run (design.md, "Crash
//! safety"): intents left pending by a run that was killed are settled
//! before anything is planned.
//!
//! - a delivery whose planned file exists is adopted: its pair is recorded,
//!   so the message is not copied again;
//! - an APPEND whose message can be found (Message-ID and size, or no
//!   Message-ID and the size, among the UIDs from the UIDNEXT saved before
//!   it) is adopted the same way. One not found is looked for once more
//!   after [`SETTLE`]: the server may still be completing the APPENDs of
//!   the killed run's connection (their bytes were in flight), and sending
//!   the message again now would store it twice;
//! - everything else is abandoned: removals, flag changes and moves are
//!   planned again from what both stores show now.

use super::SyncError;
use ferry_core::store::{ErrorClass, Markers, Snapshot, Store, StoreError};
use ferry_core::{MessageKey, Side};
use ferry_state::{Intent, IntentAction, PairChange, State};
use std::collections::BTreeMap;
use std::time::Duration;

/// What recovery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Interrupted copies found done and recorded.
    pub adopted: usize,
    /// Intents given up (their effect is planned again if still needed).
    pub abandoned: usize,
}

/// How long the server is given to complete the APPENDs a killed run left
/// in flight before those not found are sent again.
const SETTLE: Duration = Duration::from_secs(1);

/// Settles every pending intent.
pub(crate) fn recover<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    state: &mut State,
) -> Result<Recovered, SyncError> {
    let mut recovered = Recovered::default();
    let mut present: BTreeMap<(Side, String), Vec<MessageKey>> = BTreeMap::new();
    let mut unfound_appends = Vec::new();
    for intent in state.pending_intents()? {
        let folder = state.folder(intent.folder)?.names.near.clone();
        let found = match &intent.action {
            IntentAction::Deliver { pair } | IntentAction::Append { pair, .. } => {
                find(far, near, &intent, pair, &folder, &mut present)?
            }
            _ => None,
        };
        match (found, &intent.action) {
            (Some(key), _) => adopt(state, &intent, key, &mut recovered)?,
            (None, IntentAction::Append { .. }) => unfound_appends.push((intent, folder)),
            (None, IntentAction::Deliver { pair }) => {
                discard(far, near, &intent, pair, &folder);
                state.abandon(intent.id)?;
                recovered.abandoned += 1;
            }
            (None, _) => {
                state.abandon(intent.id)?;
                recovered.abandoned += 1;
            }
        }
    }
    if !unfound_appends.is_empty() {
        tracing::info!(
            "{} interrupted uploads not on the server yet; looking again in {SETTLE:?}",
            unfound_appends.len()
        );
        std::thread::sleep(SETTLE);
    }
    for (intent, folder) in unfound_appends {
        let IntentAction::Append { pair, .. } = &intent.action else {
            continue;
        };
        match find(far, near, &intent, pair, &folder, &mut present)? {
            Some(key) => adopt(state, &intent, key, &mut recovered)?,
            None => {
                state.abandon(intent.id)?;
                recovered.abandoned += 1;
            }
        }
    }
    Ok(recovered)
}

/// Removes what an interrupted delivery that is given up left behind (its
/// file in `tmp/`): the message is copied again under a new key. Best
/// effort: a file left there harms nothing, and mail readers remove such
/// files after 36 hours.
fn discard<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    intent: &Intent,
    pair: &ferry_state::Pair,
    folder: &str,
) {
    let Some(planned) = &pair.keys[intent.side] else {
        return;
    };
    let discarded = match intent.side {
        Side::Far => far
            .discard_unfinished(folder, planned)
            .map_err(|e| e.to_string()),
        Side::Near => near
            .discard_unfinished(folder, planned)
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = discarded {
        tracing::warn!("could not remove what an interrupted copy left: {e}");
    }
}

/// Records the pair of an interrupted copy found done under `key`; a key
/// already paired (another message that matched the search, a duplicate
/// adopted before) is no proof: the intent is abandoned instead.
fn adopt(
    state: &mut State,
    intent: &Intent,
    key: MessageKey,
    recovered: &mut Recovered,
) -> Result<(), SyncError> {
    let (IntentAction::Deliver { pair } | IntentAction::Append { pair, .. }) = &intent.action
    else {
        return Ok(());
    };
    if state.find_pair(intent.folder, intent.side, &key)?.is_some() {
        state.abandon(intent.id)?;
        recovered.abandoned += 1;
        return Ok(());
    }
    let mut pair = pair.clone();
    pair.keys[intent.side] = Some(key);
    state.complete(intent.id, PairChange::Insert(pair))?;
    recovered.adopted += 1;
    Ok(())
}

/// Where an interrupted copy's message is, if it got there.
fn find<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    intent: &Intent,
    pair: &ferry_state::Pair,
    folder: &str,
    present: &mut BTreeMap<(Side, String), Vec<MessageKey>>,
) -> Result<Option<MessageKey>, SyncError> {
    if let Some(planned) = &pair.keys[intent.side] {
        let keys = match present.get(&(intent.side, folder.to_string())) {
            Some(keys) => keys.clone(),
            None => {
                let keys = listed(far, near, intent.side, folder)?;
                present.insert((intent.side, folder.to_string()), keys.clone());
                keys
            }
        };
        return Ok(keys.contains(planned).then(|| planned.clone()));
    }
    let Some(size) = pair.size else {
        return Ok(None);
    };
    let message_id = pair.message_id.as_deref();
    let since = Markers {
        uid_next: match &intent.action {
            IntentAction::Append { uidnext_before, .. } => *uidnext_before,
            _ => None,
        },
        ..Markers::default()
    };
    match intent.side {
        Side::Far => far
            .find_stored(folder, message_id, size, &since)
            .map_err(|e| SyncError::store(Side::Far, e)),
        Side::Near => near
            .find_stored(folder, message_id, size, &since)
            .map_err(|e| SyncError::store(Side::Near, e)),
    }
}

/// The keys a folder holds now; a folder that cannot be listed holds none,
/// a store that fails as a whole ends the run.
fn listed<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    side: Side,
    folder: &str,
) -> Result<Vec<MessageKey>, SyncError> {
    let keys = match side {
        Side::Far => keys_of(far.snapshot(folder), side)?,
        Side::Near => keys_of(near.snapshot(folder), side)?,
    };
    Ok(keys)
}

fn keys_of<E: StoreError>(
    snapshot: Result<Snapshot, E>,
    side: Side,
) -> Result<Vec<MessageKey>, SyncError> {
    match snapshot {
        Ok(snapshot) => Ok(snapshot.messages.into_iter().map(|m| m.key).collect()),
        Err(e) if e.class() == ErrorClass::Store => Err(SyncError::store(side, e)),
        Err(_) => Ok(Vec::new()),
    }
}
