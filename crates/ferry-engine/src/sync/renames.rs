//! Folder renames seen by content (design.md, "Stores"): without MAILBOXID
//! a rename shows up as a known folder gone from one side and a new folder
//! on that side only. Where the new folder holds the known folder's
//! messages (the same Maildir file names, or the same Message-ID and size;
//! never UIDs alone), it is taken for a rename
//! and repeated on the other side; nothing is copied or deleted.

use super::SyncError;
use ferry_core::store::{ErrorClass, Snapshot, Store, StoreError};
use ferry_core::{MessageKey, PerSide, Side};
use ferry_plan::folders::{FolderFilter, FolderInfo, KnownFolder, rename_candidates};
use ferry_state::{State, StoredPair};
use std::collections::BTreeSet;

/// Sets [`KnownFolder::renamed`] where a candidate's messages match.
pub(crate) fn see_renames<F: Store, N: Store>(
    far: &mut F,
    near: &mut N,
    state: &State,
    lists: PerSide<&[FolderInfo]>,
    known: &mut [KnownFolder],
    filter: &FolderFilter,
) -> Result<(), SyncError> {
    let mut taken: BTreeSet<(Side, String)> = BTreeSet::new();
    for (side, from, to) in rename_candidates(lists, known, filter) {
        if taken.contains(&(side, to.clone())) {
            continue;
        }
        let Some(folder) = state.find_folder(Side::Near, &from)? else {
            continue;
        };
        let Some(snapshot) = (match side {
            Side::Far => usable(far.snapshot(&to), side)?,
            Side::Near => usable(near.snapshot(&to), side)?,
        }) else {
            continue;
        };
        let pairs = state.load_pairs(folder.id)?;
        if holds_the_pairs(&snapshot, &pairs, side) {
            tracing::info!(%side, %from, %to, "folder renamed");
            if let Some(k) = known
                .iter_mut()
                .find(|k| k.name == from && k.renamed.is_none())
            {
                k.renamed = Some((side, to.clone()));
                taken.insert((side, to));
            }
        }
    }
    Ok(())
}

/// A snapshot, or `None` when only this folder failed.
fn usable<E: StoreError>(
    snapshot: Result<Snapshot, E>,
    side: Side,
) -> Result<Option<Snapshot>, SyncError> {
    match snapshot {
        Ok(snapshot) => Ok(Some(snapshot)),
        Err(e) if e.class() == ErrorClass::Store => Err(SyncError::store(side, e)),
        Err(e) => {
            tracing::warn!(%side, "cannot look into a possibly renamed folder: {e}");
            Ok(None)
        }
    }
}

/// Whether nine in ten of the pairs are in the snapshot and they make at
/// least half of it. A message counts when it has the pair's Maildir
/// file name (unique by construction), or its Message-ID and size; a UID
/// alone proves nothing (a deleted folder and a new one can hold the same
/// UIDs under the same UIDVALIDITY).
fn holds_the_pairs(snapshot: &Snapshot, pairs: &[StoredPair], side: Side) -> bool {
    let keys: BTreeSet<&MessageKey> = pairs
        .iter()
        .filter_map(|p| p.pair.keys[side].as_ref())
        .filter(|k| matches!(k, MessageKey::Name(_)))
        .collect();
    let contents: BTreeSet<(&str, u64)> = pairs
        .iter()
        .filter_map(|p| Some((p.pair.message_id.as_deref()?, p.pair.size?)))
        .collect();
    let matched = snapshot
        .messages
        .iter()
        .filter(|m| {
            keys.contains(&m.key)
                || m.message_id
                    .as_deref()
                    .zip(m.size)
                    .is_some_and(|content| contents.contains(&content))
        })
        .count();
    // A rename keeps (nearly) every message: the rest of the old folder
    // would be deleted on the other side, so a folder that was split and
    // then removed must not pass for a rename.
    matched > 0 && matched * 10 >= pairs.len() * 9 && matched * 2 >= snapshot.messages.len()
}
